"""The headers of the site's pages and of the API's docs page."""

# No inline script anywhere: every script is a same-origin file. SVG charts are inline markup
# with presentation attributes, which style-src does not govern.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
# Swagger UI sets style attributes from its markup; its script is still same-origin files only.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
DOCS_ENDPOINT = "api-docs.openapi_swagger_ui"
# A CDN (or the browser) may keep a public page briefly; pages are the same for everyone.
PAGE_CACHE = "public, max-age=30"
