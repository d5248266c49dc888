"""The providers' signature schemes reproduce the examples the providers publish: Alibaba Cloud ACS3-HMAC-SHA256
(SMS and voice) and Tencent Cloud TC3-HMAC-SHA256 (SMS and voice)."""

from __future__ import annotations

import hashlib

import pytest

from channels.acs3 import EMPTY_SHA256, acs3_signature
from channels.tc3 import authorization, canonical_request, tc3_signature

# The published example of 签名方法 v3 (CVM DescribeInstances in Guangzhou, 2019-02-25).
EXAMPLE_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}
EXAMPLE_BODY = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
EXAMPLE_TIMESTAMP = 1551113065


def test_acs3_signature_matches_the_official_example() -> None:
    """The V3 document's RunInstances example gives its canonical-request hash and signature."""
    signature = acs3_signature(
        secret="YourAccessKeySecret", method="POST", uri="/",
        query={"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"},
        headers={"host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances",
                 "x-acs-version": "2014-05-26", "x-acs-date": "2023-10-26T10:22:32Z",
                 "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d", "x-acs-content-sha256": EMPTY_SHA256},
        hashed_payload=EMPTY_SHA256)
    assert signature.hashed_canonical_request == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    assert signature.signature == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    assert signature.authorization("YourAccessKeyId") == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
        "x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="
        "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")


@pytest.mark.parametrize(("secret_key", "expected"), [
    # tencentcloud.com "Signature v3" (English), and cloud.tencent.com 签名方法 v3 (its masked key).
    ("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"),
    ("Gu5t9xGARNpq86cd98joQYCN3*******", "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"),
])
def test_tc3_signature_matches_the_published_example(secret_key: str, expected: str) -> None:
    """tc3_signature reproduces the signature of Tencent's documented DescribeInstances example."""
    signature = tc3_signature(secret_key, service="cvm", timestamp=EXAMPLE_TIMESTAMP, headers=EXAMPLE_HEADERS,
                              payload=EXAMPLE_BODY)
    assert signature == expected


def test_canonical_request_hash_matches_the_published_example() -> None:
    """The canonical request hashes to the documented HashedCanonicalRequest."""
    canonical = canonical_request(EXAMPLE_HEADERS, EXAMPLE_BODY)
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")


def test_authorization_header_matches_the_published_example() -> None:
    """The Authorization value is the documented one, character for character."""
    value = authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", service="cvm",
                          timestamp=EXAMPLE_TIMESTAMP, headers=EXAMPLE_HEADERS, payload=EXAMPLE_BODY)
    assert value == ("TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
                     "SignedHeaders=content-type;host, "
                     "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
