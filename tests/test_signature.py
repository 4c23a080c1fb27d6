"""The webhook signature module, checked against GitHub's documented example and githubkit's verifier."""

import githubkit.webhooks
import pytest

from webhooks import signature

# The example from GitHub's "Validating webhook deliveries" page.
DOC_SECRET = "It's a Secret to Everybody"
DOC_BODY = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_sign_matches_githubs_documented_example():
    assert signature.sign(DOC_SECRET, DOC_BODY) == DOC_SIGNATURE


def test_a_signature_githubkit_accepts_is_valid_here():
    body = b'{"action":"labeled"}'
    header = signature.sign("s3cret", body)
    assert githubkit.webhooks.verify("s3cret", body, header)
    assert signature.is_valid("s3cret", body, header)


@pytest.mark.parametrize("header", [
    None, "", DOC_SIGNATURE[len("sha256="):], "sha256=" + "0" * 64,
    signature.sign_legacy(DOC_SECRET, DOC_BODY), signature.sign("another secret", DOC_BODY),
])
def test_missing_bare_wrong_or_sha1_signatures_are_refused(header):
    assert not signature.is_valid(DOC_SECRET, DOC_BODY, header)


def test_a_changed_body_is_refused():
    assert not signature.is_valid(DOC_SECRET, DOC_BODY + b" ", DOC_SIGNATURE)
