"""Failure causes in words: every `last_error` text the service writes — produced here by the real classifiers
of each adapter, the dispatcher's retry policy, the store's sweeps and receipts — maps to a cause an official can
act on, in zh-CN and English, with the raw text kept beside it."""

from __future__ import annotations

import json
import ssl
from types import ModuleType

import aiosmtplib
import pytest

from channels import email, webhook, wechat
from channels.errors import DeliveryError, TransientDeliveryError
from channels.sms import aliyun, tencent
from channels.ssrf import ForbiddenDestination
from channels.voice import aliyun as aliyun_voice
from channels.voice import tencent as tencent_voice
from channels.wechat_token import token_error
from notifier.causes import explain, fold
from notifier.config import WorkerSettings
from notifier.retry import RetryPolicy
from notifier.store.assisted import PROXY_NOT_TOLD


def _webhook(answer: int | BaseException) -> str:
    return str(webhook.classify("d", answer).error)


def _wechat(answer: int | dict[str, object] | BaseException) -> str:
    return str(wechat.classify("d", answer).error)


def _aliyun(code: str, message: str = "", status: int = 200) -> str:
    return str(aliyun.classify((status, {"Code": code, "Message": message})).error)


def _tencent(code: str) -> str:
    return str(tencent.result_for("d", tencent.SendStatus(PhoneNumber="+8613800000001", Code=code)).error)


def _tencent_request(code: str) -> str:
    body = json.dumps({"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r"}}).encode()
    with pytest.raises(DeliveryError) as refused:
        tencent.read_answer(200, body)
    return str(refused.value)


def _call(provider: ModuleType, code: str, smart: str | None = None) -> str:
    body = [{"call_id": "c-1", "status_code": code, "smart_status_code": smart}]
    return str(provider.parse_receipts(json.dumps(body).encode())[0].error)


def _tencent_call(callback: dict[str, object]) -> str:
    return str(tencent_voice.parse_receipts(json.dumps(callback).encode())[0].error)


def _smtp(exc: BaseException, phase: str = "send") -> str:
    return str(email.classify(exc, phase="connect" if phase == "connect" else "send").error)


def _gave_up(error: str, attempts: int) -> str:
    policy = RetryPolicy(WorkerSettings(max_attempts=3))
    decision = policy.decide(attempts, None, now=1000.0, released_at=1000.0, expires_at=None)
    return f"{error}; {decision.reason}"


# (channel, the text as stored, the cause it must get)
PRODUCED = [
    # the dispatcher, the store's sweep, erasure
    ("sms", "channel sms is not configured", "not_configured"),
    ("wechat", "no usable contact", "no_contact"),
    ("webhook", "lease expired: the worker stopped mid-send", "lease_expired"),
    ("email", "adapter returned no result", "internal"),
    ("webhook", "adapter error: KeyError", "internal"),
    ("webhook", _gave_up("HTTP 503", 3), "gave_up:webhook.server_error"),
    ("email", _gave_up("SMTP 451 4.3.0", 3), "gave_up:email.temporary"),
    # webhook
    ("webhook", _webhook(410), "webhook.gone"),
    ("webhook", _webhook(301), "webhook.redirect"),
    ("webhook", _webhook(401), "webhook.auth"),
    ("webhook", _webhook(404), "webhook.not_found"),
    ("webhook", _webhook(429), "webhook.busy"),
    ("webhook", _webhook(422), "webhook.refused"),
    ("webhook", _webhook(503), "webhook.server_error"),
    ("webhook", _webhook(TimeoutError()), "timeout"),
    ("webhook", _webhook(ForbiddenDestination("private")), "webhook.private"),
    ("webhook", _webhook(ConnectionResetError()), "unreachable"),
    ("webhook", _webhook(RuntimeError()), "internal"),
    ("webhook", "webhook secret invalid", "webhook.secret"),
    # WeChat: send answers, token errors, receipts
    ("wechat", _wechat({"errcode": 43004}), "wechat.not_following"),
    ("wechat", _wechat({"errcode": 43101}), "wechat.refused"),
    ("wechat", _wechat({"errcode": 40003}), "wechat.bad_openid"),
    ("wechat", _wechat({"errcode": 40037}), "wechat.bad_template"),
    ("wechat", _wechat({"errcode": 47003}), "wechat.bad_data"),
    ("wechat", _wechat({"errcode": 42001}), "wechat.credentials"),
    ("wechat", _wechat({"errcode": 45009}), "wechat.quota"),
    ("wechat", _wechat(500), "provider_error"),
    ("wechat", _wechat(TimeoutError()), "timeout"),
    ("wechat", str(token_error(40164)), "wechat.credentials"),
    ("wechat", str(token_error(45009)), "wechat.quota"),
    ("wechat", str(TransientDeliveryError("access token request timed out")), "timeout"),
    ("wechat", "receipt: failed:user block", "wechat.blocked"),
    ("wechat", "receipt: failed: system failed", "wechat.system"),
    # SMS, Aliyun
    ("sms", _aliyun("isv.MOBILE_NUMBER_ILLEGAL"), "sms.bad_number"),
    ("sms", _aliyun("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10"), "sms.number_limit"),
    ("sms", _aliyun("isv.DAY_LIMIT_CONTROL"), "sms.account_cap"),
    ("sms", _aliyun("SignatureDoesNotMatch"), "sms.credentials"),
    ("sms", _aliyun("isp.RAM_PERMISSION_DENY"), "sms.credentials"),
    ("sms", _aliyun("isv.SMS_TEMPLATE_ILLEGAL"), "sms.template"),
    ("sms", _aliyun("isv.TEMPLATE_MISSING_PARAMETERS"), "sms.params"),
    ("sms", _aliyun("isv.AMOUNT_NOT_ENOUGH"), "sms.balance"),
    ("sms", _aliyun("isv.OUT_OF_SERVICE"), "sms.suspended"),
    ("sms", _aliyun("isv.BLACK_KEY_CONTROL_LIMIT"), "sms.content"),
    ("sms", _gave_up(_aliyun("isp.SYSTEM_ERROR"), 3), "gave_up:provider_error"),
    ("sms", _aliyun("", status=500), "provider_error"),
    ("sms", "not a mainland mobile number", "sms.bad_number"),
    ("sms", "verification_template_code not configured", "sms.no_verification_template"),
    # SMS, Tencent
    ("sms", _tencent("InvalidParameterValue.IncorrectPhoneNumber"), "sms.bad_number"),
    ("sms", _tencent("LimitExceeded.PhoneNumberDailyLimit"), "sms.number_limit"),
    ("sms", _tencent("FailedOperation.PhoneNumberInBlacklist"), "sms.blocked"),
    ("sms", _tencent("FailedOperation.TemplateIncorrectOrUnapproved"), "sms.template"),
    ("sms", _tencent("FailedOperation.ContainSensitiveWord"), "sms.content"),
    ("sms", _tencent_request("AuthFailure.SignatureFailure"), "sms.credentials"),
    ("sms", "not a mainland number: needs an international template", "sms.international"),
    ("sms", "Tencent SMS: no status for this number", "provider_error"),
    ("sms", "Tencent SMS: timeout", "timeout"),
    # SMS receipts (the store writes `receipt: <the provider's code>`)
    ("sms", "receipt: UNDELIV", "sms.undeliverable"),
    ("sms", "receipt: EXPIRED", "sms.expired"),
    ("sms", "receipt: REJECTD", "sms.rejected"),
    ("sms", "receipt: MK:0005", "sms.handset"),
    ("sms", "receipt: DB:0141", "sms.carrier_refused"),
    ("sms", "receipt: IC:0151", "sms.carrier_error"),
    ("sms", "receipt: FAIL", "sms.receipt_failed"),
    # voice: call results as the store keeps them (`receipt: …`, `; gave up …` once no call is left)
    ("voice", f"receipt: {_call(aliyun_voice, '200003')}", "voice.no_answer"),
    ("voice", f"receipt: {_call(aliyun_voice, '200002')}; gave up after 3 calls", "gave_up:voice.no_answer"),
    ("voice", f"receipt: {_call(aliyun_voice, '200010')}; gave up (the alert expires before another call)",
     "gave_up_expiring:voice.no_answer"),
    ("voice", f"receipt: {_call(aliyun_voice, '200004')}", "voice.bad_number"),
    ("voice", f"receipt: {_call(aliyun_voice, '', 'CALL_REJECTED')}", "voice.rejected"),
    ("voice", f"receipt: {_tencent_call({'voice_failure_callback': {'callid': 'c', 'failure_code': 10}})}",
     "voice.no_answer"),
    ("voice", f"receipt: {_tencent_call({'voice_failure_callback': {'callid': 'c', 'failure_code': 8}})}",
     "voice.bad_number"),
    ("voice", "Tencent VMS calls mainland mobiles only (a fixed line?)", "voice.landline"),
    # assisted reach: the store fails a proxy's people when every channel of the proxy failed
    ("proxy", PROXY_NOT_TOLD, "proxy.not_told"),
    # email
    ("email", _smtp(aiosmtplib.SMTPRecipientRefused(550, "5.1.1 Mailbox unavailable", "a@x.org")),
     "email.no_mailbox"),
    ("email", _smtp(aiosmtplib.SMTPResponseException(552, "5.2.2 Mailbox full")), "email.mailbox_full"),
    ("email", _smtp(aiosmtplib.SMTPResponseException(550, "5.7.1 Rejected by policy")), "email.policy"),
    ("email", _smtp(aiosmtplib.SMTPResponseException(554, "Transaction failed")), "email.refused"),
    ("email", _smtp(aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"), "connect"), "email.auth"),
    ("email", _smtp(aiosmtplib.SMTPNotSupported("STARTTLS"), "connect"), "email.extension"),
    ("email", _smtp(ssl.SSLError("bad certificate")), "email.tls"),
    ("email", _smtp(TimeoutError()), "timeout"),
    ("email", _smtp(ConnectionRefusedError()), "unreachable"),
    ("email", _smtp(ValueError("bad address")), "email.bad_address"),
    ("email", "SMTP connection lost before send", "unreachable"),
]


@pytest.mark.parametrize(("channel", "text", "key"), PRODUCED, ids=[f"{c}: {t}" for c, t, _ in PRODUCED])
def test_every_produced_error_text_has_its_cause(channel: str, text: str, key: str) -> None:
    """The text an adapter, the dispatcher or the store writes gets its own cause, worded, raw text beside."""
    cause = explain(channel, "failed", text)
    assert cause.key == key
    assert cause.zh and cause.en and "{" not in cause.zh + cause.en
    assert cause.raw == text


def test_an_unknown_text_gets_the_generic_cause_with_the_raw_text() -> None:
    """A code no rule knows is shown as "another reason", the code kept for the provider's manual."""
    cause = explain("wechat", "failed", "errcode 48001")
    assert cause.key == "other" and cause.raw == "errcode 48001"
    assert (cause.zh, cause.en) == ("其他原因（见原始错误码）", "another reason (see the raw code)")


def test_a_channel_that_is_not_configured_names_its_section() -> None:
    """The words name the missing configuration section, for the operator to add."""
    cause = explain("sms", "failed", "channel sms is not configured")
    assert "[channels.sms]" in cause.zh and "[channels.sms]" in cause.en


def test_retries_used_up_keep_the_underlying_cause() -> None:
    """A transient failure retried until the bound says both: that retries ran out, and why they failed."""
    cause = explain("webhook", "failed", "HTTP 503; gave up after 10 attempts")
    assert cause.zh.startswith("多次重试仍未成功：") and "接收方服务器出错" in cause.zh
    assert cause.en.startswith("retries used up: ")


def test_expired_and_cancelled_deliveries_say_so_whatever_their_last_text() -> None:
    """The final status decides for expiry, cancellation and erasure."""
    assert explain("sms", "expired", "HTTP 503").key == "expired"
    assert explain("sms", "cancelled", None).key == "cancelled"
    assert explain("email", "cancelled", "subscriber deleted").key == "subscriber_deleted"
    assert explain("email", "failed", None).key == "unknown"


def test_a_contact_in_a_provider_text_is_masked() -> None:
    """A raw text that quotes a mobile number shows it masked."""
    cause = explain("sms", "failed", "rejected +8613812345678")
    assert cause.raw is not None and "13812345678" not in cause.raw and "138****5678" in cause.raw


def test_fold_adds_up_the_store_groups_by_channel_and_cause() -> None:
    """Groups of the same cause add up, the most frequent first, keeping the most frequent raw text."""
    rows = [("wechat", "failed", "errcode 43004: not following", 5), ("sms", "failed", "receipt: UNDELIV", 2),
            ("webhook", "failed", "HTTP 503; gave up after 10 attempts", 1),
            ("webhook", "failed", "HTTP 502; gave up after 10 attempts", 3)]
    folded = fold(rows)
    assert [(c.channel, c.cause.key, c.count) for c in folded] == [
        ("wechat", "wechat.not_following", 5), ("webhook", "gave_up:webhook.server_error", 4),
        ("sms", "sms.undeliverable", 2)]
    assert folded[1].cause.raw == "HTTP 502; gave up after 10 attempts"
