"""Every checkov finding the template does not fix is skipped next to its resource, with its reason."""

from __future__ import annotations

import re


def test_every_skip_names_a_check_and_says_why(sam_template):
    skips = [
        (name, skip)
        for name, resource in sam_template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips, "no checkov skips found: were they moved away from their resources?"
    for name, skip in skips:
        assert set(skip) == {"id", "comment"}, name
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), (name, skip)
        assert len(skip["comment"].split()) >= 8, (name, skip["id"], "give the reason in a sentence")
    assert len({(name, skip["id"]) for name, skip in skips}) == len(skips), "a check skipped twice"


def test_reserved_concurrency_is_fixed_on_the_upload_function_not_skipped(sam_template):
    upload = sam_template["Resources"]["UploadFunction"]
    skipped = {skip["id"] for skip in upload["Metadata"]["checkov"]["skip"]}
    assert "CKV_AWS_115" not in skipped
    assert "ReservedConcurrentExecutions" in upload["Properties"]
