"""The Blueprint every API module uses: flask-smorest's, with an arguments parser that refuses
unsafe text (app/text.py) in any JSON body, query string or form field before a schema sees it,
as a 422 naming the field, instead of a database error."""
from __future__ import annotations

from typing import Mapping

import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser

from app.text import UNSAFE_MESSAGE, unsafe_paths


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
