"""The OpenAPI document at /api/v1/openapi.json: public, OpenAPI 3, and complete — every route of
the url_map with its methods, response schemas, request-body schemas and auth."""
from __future__ import annotations

import re

import pytest

from miniprogram_api.policy import PARTNER_CLIENT, PUBLIC, SELF_AUTH_ATTR

DOC = "/api/v1/openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# POST actions whose whole meaning is in the URL: they take no body.
BODYLESS = {("post", "/api/v1/wishes/{wish_id}/submit"),
            ("post", "/api/v1/wishes/{wish_id}/approve"),
            ("post", "/api/v1/beneficiaries/{ben_id}/withdraw-consent"),
            ("post", "/api/v1/me/notifications/{notification_id}/read"),
            ("post", "/api/v1/claims/{claim_id}/release"),
            ("post", "/api/v1/claims/{claim_id}/confirm"),
            ("post", "/api/v1/disbursements/{disbursement_id}/approve"),
            ("post", "/api/v1/tasks/{task_id}/start")}
# Operations whose body is multipart/form-data (photo uploads), not JSON.
MULTIPART = {("post", "/api/v1/claims/{claim_id}/proofs")}
# Operations whose body is a form (application/x-www-form-urlencoded): OAuth's token endpoint.
FORM = {("post", "/api/v1/oauth/token")}


def _exempt(endpoint: str) -> bool:
    """Not API operations: static files, the document and its UI, the public site's pages."""
    return endpoint == "static" or endpoint.startswith(("api-docs.", "public_site."))


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _operations(app) -> dict[tuple[str, str], str]:
    """(method, OpenAPI path) -> endpoint, for every route we serve."""
    ops = {}
    for rule in app.url_map.iter_rules():
        if _exempt(rule.endpoint):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            ops[(method.lower(), _openapi_path(rule.rule))] = rule.endpoint
    return ops


@pytest.fixture
def doc(client):
    res = client.get(DOC)
    assert res.status_code == 200
    return res.get_json()


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        parts = node["$ref"].lstrip("#/").split("/")
        node = doc
        for part in parts:
            node = node[part]
    return node


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_document_is_public_json(client):
    res = client.get(DOC)

    assert res.status_code == 200
    assert res.mimetype == "application/json"


def test_document_is_openapi_3_in_structure(doc):
    try:  # the real validator when it is installed; the structural checks below always run
        from openapi_spec_validator import validate
    except ImportError:
        validate = None
    if validate:
        validate(doc)
    assert re.fullmatch(r"3\.\d+\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert isinstance(doc["paths"], dict) and doc["paths"]
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        for method, op in item.items():
            assert method in HTTP_METHODS | {"parameters", "summary", "description"}, method
            if method in HTTP_METHODS:
                assert op["responses"], (method, path)
        # every {param} in the path is declared as a path parameter
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        for method in HTTP_METHODS & set(item):
            declared |= {p["name"] for p in item[method].get("parameters", [])
                         if p["in"] == "path"}
        assert set(re.findall(r"{([^}]+)}", path)) == declared, path


def test_every_ref_resolves(doc):
    for ref in set(_refs(doc)):
        assert ref.startswith("#/"), ref
        _resolve(doc, {"$ref": ref})  # raises KeyError if it points nowhere


def test_every_route_is_in_the_document_with_its_methods(app, doc):
    documented = {(method, path) for path, item in doc["paths"].items()
                  for method in item if method in HTTP_METHODS}
    served = set(_operations(app))

    assert not served - documented, f"routes missing from the document: {served - documented}"
    assert not documented - served, f"documented but not served: {documented - served}"


def test_every_operation_has_a_success_response_schema(app, doc):
    for method, path in _operations(app):
        responses = doc["paths"][path][method]["responses"]
        success = [_resolve(doc, r) for code, r in responses.items() if code.startswith("2")]
        assert success, (method, path)
        for response in success:
            content = response.get("content", {})
            assert any("schema" in media for media in content.values()), (method, path)


def test_every_json_body_operation_has_a_request_body_schema(app, doc):
    for method, path in _operations(app):
        op = doc["paths"][path][method]
        if (method, path) in MULTIPART:
            body = _resolve(doc, op["requestBody"])
            schema = _resolve(doc, body["content"]["multipart/form-data"]["schema"])
            assert schema.get("properties"), (method, path)
        elif (method, path) in FORM:
            body = _resolve(doc, op["requestBody"])
            schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
            assert schema.get("properties"), (method, path)
        elif method in {"post", "put", "patch"} and (method, path) not in BODYLESS:
            body = _resolve(doc, op.get("requestBody", {}))
            assert "application/json" in body.get("content", {}), (method, path)
            schema = _resolve(doc, body["content"]["application/json"]["schema"])
            assert schema.get("properties"), (method, path)
        elif method in {"get", "delete"} or (method, path) in BODYLESS:
            assert "requestBody" not in op, (method, path)


def test_bodyless_list_names_only_real_bodyless_routes(app):
    assert BODYLESS | MULTIPART | FORM <= set(_operations(app))


def test_every_operation_declares_its_auth(app, doc):
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for (method, path), endpoint in _operations(app).items():
        security = doc["paths"][path][method].get("security", doc.get("security"))
        assert security, (method, path)
        view = app.view_functions[endpoint]
        public = PUBLIC in view.__access__
        if getattr(view, SELF_AUTH_ATTR, False):  # HTTP Basic client credentials
            assert security == [{"partnerBasic": []}], (method, path)
        elif view.__access__ == {PARTNER_CLIENT}:
            assert [set(s) for s in security] == [{"partnerOAuth"}], (method, path)
        elif public:
            assert {} in security, f"{method} {path} is public but demands a token"
        else:
            assert {"bearerAuth": []} in security, (method, path)
            assert {} not in security, f"{method} {path} needs a token but allows anonymous"


def test_documented_region_pattern_refuses_what_the_server_refuses(doc):
    """The pattern in the document is what clients validate with; it must be ECMA-262 safe
    and agree with the server on the obvious cases."""
    schema = _resolve(doc, {"$ref": "#/components/schemas/BeneficiaryIn"})
    pattern = schema["properties"]["region_code"]["pattern"]
    for good in ("350505", "350505101", "350505101201"):
        assert re.search(pattern, good)
    for bad in ("3505051", "35050510120a", "３５０５０５"):
        assert not re.search(pattern, bad)
    assert "\\d" not in pattern and "\\Z" not in pattern


def test_error_responses_are_documented_as_problem_json(app, doc):
    """Errors are served as problem+json with a string `code`; the document must say so."""
    for method, path in _operations(app):
        responses = doc["paths"][path][method]["responses"]
        # the shared error responses (an operation's own alternatives, like readyz's 503
        # health body, are described inline)
        errors = {code: _resolve(doc, r) for code, r in responses.items()
                  if code == "default" or "$ref" in r}
        assert "default" in errors, (method, path)
        for code, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (method, path, code)
            schema = _resolve(doc, response["content"]["application/problem+json"]["schema"])
            props = schema["properties"]
            assert {"type", "title", "status", "detail", "code", "errors"} <= set(props)
            assert props["code"]["type"] == "string" and props["status"]["type"] == "integer"
            assert schema.get("additionalProperties") is not False  # e.g. a 500's request_id


def test_tlog_tiles_are_documented_as_bytes_and_the_checkpoint_as_text(doc):
    """The C2SP tlog-tiles routes answer with raw bytes (hash tiles, entry bundles) and a signed
    note in text, not JSON; a tile the signed checkpoint does not cover is a 404 problem."""
    base = "/api/v1/ledger/tlog"

    def success(path: str) -> dict:
        return doc["paths"][path]["get"]["responses"]["200"]["content"]

    assert success(f"{base}/checkpoint") == {"text/plain": {"schema": {"type": "string"}}}
    for path in (f"{base}/tile/{{tile}}", f"{base}/tile/entries/{{bundle}}"):
        assert success(path) == {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}
        assert "404" in doc["paths"][path]["get"]["responses"]


# --- what the server refuses, stated in the document -------------------------------------------

NUL_SAMPLES = ["\x00", "a\x00b", "一副老花镜\x00"]


def _string_schemas(doc: dict, schema: dict, where: str, seen: frozenset = frozenset()):
    """(where, schema) for every string schema in `schema`, through refs, properties, items,
    additionalProperties and allOf/anyOf/oneOf."""
    ref = schema.get("$ref")
    if ref:
        if ref in seen:
            return
        seen, schema = seen | {ref}, _resolve(doc, schema)
    types = schema.get("type")
    if types == "string" or (isinstance(types, list) and "string" in types):
        yield where, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _string_schemas(doc, sub, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _string_schemas(doc, schema[key], f"{where}[{key}]", seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key) or []):
            yield from _string_schemas(doc, sub, f"{where}<{key}{i}>", seen)


# WeChat Pay's notification is checked as signed bytes by WeChat Pay's rules, never parsed by
# our schemas; its body is described by hand (miniprogram_api/donations.py).
SIGNED_BODIES = {("post", "/api/v1/payments/wechatpay/notify")}


def _input_strings(doc: dict):
    """(where, schema) for every string a client sends in a request body or a query string."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS or (method, path) in SIGNED_BODIES:
                continue
            for param in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
                param = _resolve(doc, param)
                if param["in"] == "query":
                    yield from _string_schemas(doc, param["schema"],
                                               f"{method} {path} ?{param['name']}")
            body = _resolve(doc, op.get("requestBody") or {})
            for media, content in (body.get("content") or {}).items():
                yield from _string_schemas(doc, content.get("schema") or {},
                                           f"{method} {path} <{media}>")


def test_every_string_a_client_sends_carries_a_pattern_that_refuses_nul(doc):
    """The server refuses NUL in every body, query and form string (a 422): a document that
    does not say so calls such input valid (schemathesis' positive-data check flagged it). Each
    pattern must also be one that Schemathesis' validator (jsonschema-rs, Rust's regex) reads: a
    pattern naming the surrogates was refused there, and ignored."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    found = list(_input_strings(doc))
    assert len(found) > 50  # the walk reaches the bodies and queries
    missing = []
    for where, schema in found:
        if schema.get("format") == "binary":
            continue  # a photo's bytes, not text
        pattern = schema.get("pattern")
        if pattern is None or any(re.search(pattern, s) for s in NUL_SAMPLES):
            missing.append(f"{where}: {pattern!r}")
            continue
        validator = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
        if any(validator.is_valid(s) for s in NUL_SAMPLES):
            missing.append(f"{where}: {pattern!r} (as jsonschema-rs reads it)")
    assert not missing, "\n".join(missing)


def test_the_text_pattern_accepts_any_other_text(doc):
    from app.text import SAFE_TEXT_PATTERN, is_unsafe

    text = "".join(chr(c) for c in range(1, 0x3000)) + "一副老花镜😀\U0010ffff"
    assert not is_unsafe(text) and re.search(SAFE_TEXT_PATTERN, text)
    assert is_unsafe("\x00") and not re.search(SAFE_TEXT_PATTERN, "a\x00")
    assert doc["components"]["schemas"]["WishCreateIn"]["properties"]["title"]["pattern"] \
        == SAFE_TEXT_PATTERN


@pytest.mark.parametrize("path, names", [
    ("/api/v1/ledger/proof/inclusion", ["index", "tree_size"]),
    ("/api/v1/ledger/proof/consistency", ["first", "second"]),
])
def test_ledger_proofs_document_the_422_for_sizes_the_log_has_not_reached(doc, path, names):
    """A tree size beyond the ledger's, or an index past the tree: schema-valid (the size grows,
    a schema cannot say it) and refused with 422. The document says so, for this operation."""
    refused = doc["paths"][path]["get"]["responses"]["422"]
    assert "$ref" not in refused  # not just the generic "the schema was not met"
    assert all(name in refused["description"] for name in names), refused["description"]
    assert "当前大小" in refused["description"]
    assert _resolve(doc, refused["content"]["application/problem+json"]["schema"]) \
        == _resolve(doc, {"$ref": "#/components/schemas/Problem"})
