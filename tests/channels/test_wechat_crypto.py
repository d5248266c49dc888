"""WeChat safe mode's message encryption (WXBizMsgCrypt) reproduces the published examples, and refuses what is
not ours: another app id, a tampered ciphertext, a wrong or stale msg_signature, a malformed EncodingAESKey."""

from __future__ import annotations

import base64

import pydantic
import pytest

from channels.wechat import WechatConfig
from channels.wechat_crypto import MessageCrypt, WechatCryptoError, aes_key

# The vectors published with wechatpy's crypto tests (the same construction, a corp id in the app id's place).
TOKEN, KEY, APP_ID = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
REPLY = b"""<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
REPLY_ENCRYPTED = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObv"
    "esEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRr"
    "rNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazP"
    "oQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3")
EVENT_ENCRYPTED = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh"
    "6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQq"
    "Gp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7F"
    "S709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=")
ECHO_ENCRYPTED = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="


@pytest.fixture
def crypt() -> MessageCrypt:
    return MessageCrypt(TOKEN, KEY, APP_ID)


def test_encryption_and_msg_signature_match_the_published_example(crypt: MessageCrypt) -> None:
    """With the example's random prefix, Encrypt and msg_signature are the published ones, byte for byte."""
    encrypted = crypt.encrypt(REPLY, random16=b"1234567890123456")
    assert encrypted == REPLY_ENCRYPTED
    assert crypt.signature("1411525903", "461056294", encrypted) == "407518b7649e86ef23978113f92d27afa9296533"


def test_a_published_event_decrypts_after_its_signature_verifies(crypt: MessageCrypt) -> None:
    """The example event opens with its msg_signature and holds the example's fields."""
    xml = crypt.open("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", EVENT_ENCRYPTED,
                     max_skew=None)
    assert b"<Content><![CDATA[test]]></Content>" in xml and b"messense" in xml


def test_the_published_encrypted_echostr_decrypts(crypt: MessageCrypt) -> None:
    """The example handshake's encrypted echostr opens to its number."""
    assert crypt.open("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", ECHO_ENCRYPTED,
                      max_skew=None) == b"5927782489442352469"


def test_a_round_trip_returns_the_message(crypt: MessageCrypt) -> None:
    """Whatever the length (padding to 32 bytes included), what is encrypted decrypts to itself."""
    for size in (0, 1, 11, 12, 31, 32, 33, 1000):
        message = "事".encode() * size
        assert crypt.decrypt(crypt.encrypt(message)) == message


def test_a_message_for_another_account_is_refused(crypt: MessageCrypt) -> None:
    """The app id at the end must be ours: another account's message (same key) does not open."""
    other = MessageCrypt(TOKEN, KEY, "wx0000000000000000").encrypt(b"<xml/>")
    with pytest.raises(WechatCryptoError, match="another app id"):
        crypt.decrypt(other)


@pytest.mark.parametrize("encrypt", ["not base64!", base64.b64encode(b"short").decode(),
                                     base64.b64encode(bytes(64)).decode()])
def test_tampered_or_truncated_ciphertext_is_refused(crypt: MessageCrypt, encrypt: str) -> None:
    """Garbage, a partial block or the wrong key's output is a WechatCryptoError (a ValueError), never a crash."""
    with pytest.raises(WechatCryptoError):
        crypt.decrypt(encrypt)


def test_a_wrong_or_stale_msg_signature_does_not_verify(crypt: MessageCrypt) -> None:
    """A signature over other data fails; a right one more than five minutes old fails too."""
    encrypted = crypt.encrypt(b"<xml/>")
    good = crypt.signature("1000000", "1", encrypted)
    assert crypt.verify(good, "1000000", "1", encrypted, now=1000100)
    assert not crypt.verify(good, "1000000", "2", encrypted, now=1000100)
    assert not crypt.verify(good, "1000000", "1", encrypted, now=1000400)


@pytest.mark.parametrize("key", ["short", KEY[:-1] + "*", KEY + "A"])
def test_a_malformed_encoding_aes_key_is_refused(key: str) -> None:
    """Only a 43-character base64 key is an EncodingAESKey."""
    with pytest.raises(WechatCryptoError):
        aes_key(key)


def test_safe_mode_without_a_key_is_a_configuration_error() -> None:
    """callback_mode safe or compatible needs encoding_aes_key; a bad key is refused when the config loads."""
    base = {"app_id": "wx1", "app_secret": "s", "token": "t", "template_id": "T"}
    with pytest.raises(pydantic.ValidationError, match="encoding_aes_key"):
        WechatConfig.model_validate({**base, "callback_mode": "safe"})
    with pytest.raises(pydantic.ValidationError):
        WechatConfig.model_validate({**base, "callback_mode": "safe", "encoding_aes_key": "x" * 42})
    assert WechatConfig.model_validate({**base, "callback_mode": "compatible", "encoding_aes_key": KEY})
