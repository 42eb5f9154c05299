"""The Blueprint every API module uses: flask-smorest's, with two checks of its own.

- Arguments are parsed by a parser that refuses unsafe text (app/text.py: NUL, lone surrogates)
  in any JSON body, query string or form field before a schema sees it, as a 422 naming the
  field, instead of a database error.
- A JSON body the document marks as required must be there: without one, webargs hands the
  schema `{}`, so a PATCH whose fields are all optional answered 200 to a request with no body
  at all (Schemathesis' coverage phase found it). An explicit `{}` is still a valid body.
"""
from __future__ import annotations

import functools
from typing import Mapping

import flask_smorest
import marshmallow as ma
from flask import request
from webargs.flaskparser import FlaskParser

from app.errors import ValidationFailed
from app.text import UNSAFE_MESSAGE, unsafe_paths
from miniprogram_api.problems import PROBLEM_MIMETYPE


def refuses_valid_input(description: str) -> dict:
    """`@blp.doc(responses=refuses_valid_input("..."))`: a 422 the schema cannot foresee (a rule
    across two parameters, or the server's state: a size the ledger has not reached), described
    for this operation. flask-smorest's generic 422 says only "the schema was not met"; with
    this one the document says which schema-valid input is refused, and tests/fuzz accepts a
    422 from exactly these operations for valid input."""
    return {"422": {"description": description, "content": {
        PROBLEM_MIMETYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


class SafeTextParser(FlaskParser):
    def pre_load(self, location_data: Mapping, *, schema: ma.Schema, req, location: str):
        found = unsafe_paths(location_data)
        if found:
            errors: dict = {}
            for path in found[:20]:
                head = path[0] if path else "_schema"
                errors.setdefault(head, [UNSAFE_MESSAGE])
            raise ma.ValidationError(errors)
        return location_data


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SafeTextParser()

    def arguments(self, schema, *, location="json", required=True, **kwargs):
        decorator = super().arguments(schema, location=location, required=required, **kwargs)
        if location != "json" or not required:
            return decorator

        def with_body(func):
            parsed = decorator(func)

            @functools.wraps(parsed)
            def wrapper(*args, **kw):
                if not request.get_data(cache=True).strip():
                    raise ValidationFailed(detail="缺少请求体（JSON）",
                                           errors={"_schema": ["请求体不能为空"]})
                return parsed(*args, **kw)
            return wrapper
        return with_body
