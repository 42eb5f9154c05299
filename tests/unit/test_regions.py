"""Region codes and the scope rule (app.regions): which regions a scope of prefixes covers."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import ValidationFailed
from app.regions import covers, is_region_code, town_of, validate_region_code

COUNTY, TOWN, VILLAGE = "350505", "350505100", "350505100201"


@pytest.mark.parametrize("code", [COUNTY, TOWN, VILLAGE])
def test_county_town_and_village_codes_are_region_codes(code):
    assert is_region_code(code) and validate_region_code(code) == code


@pytest.mark.parametrize("code", ["", "35050", "3505051", "3505051002011", "35050５", "350505\n",
                                  "35O505", None])
def test_anything_else_is_refused_with_the_field_named(code):
    assert not is_region_code(code)
    with pytest.raises(ValidationFailed) as refused:
        validate_region_code(code, field="region")
    assert list(refused.value.errors) == ["region"]


@pytest.mark.parametrize("prefixes, code, covered", [
    (None, VILLAGE, True),                   # moderators and admins: every region
    ([], VILLAGE, False),                    # donors: none
    ([COUNTY], VILLAGE, True),               # a county covers its villages
    ([TOWN], COUNTY, False),                 # a town does not cover its county
    (["350505101"], VILLAGE, False),         # nor a sibling town's villages
    (["350521", COUNTY], TOWN, True),        # any of several prefixes
    ([COUNTY], None, False),                 # nothing without a region
    (None, None, False),
])
def test_the_scope_rule(prefixes, code, covered):
    assert covers(prefixes, code) is covered


digits = st.text(alphabet="0123456789", min_size=12, max_size=12)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(digits, st.sampled_from([6, 9, 12]), st.sampled_from([6, 9, 12]))
def test_a_prefix_covers_exactly_the_codes_that_start_with_it(village, scope_length, length):
    scope, code = village[:scope_length], village[:length]
    assert covers([scope], code) is (length >= scope_length)
    assert covers([town_of(village)], village) and town_of(village) == village[:9]
