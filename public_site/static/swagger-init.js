// Starts Swagger UI on /api/v1/docs. A file, not an inline script, so the page's
// Content-Security-Policy needs no 'unsafe-inline' for scripts.
window.addEventListener("load", function () {
  var el = document.getElementById("swagger-ui-container");
  var config = JSON.parse(el.getAttribute("data-config") || "{}");
  config.url = el.getAttribute("data-spec-url");
  config.dom_id = "#swagger-ui-container";
  config.validatorUrl = null; // the default badge would load an image from validator.swagger.io
  window.ui = SwaggerUIBundle(config);
});
