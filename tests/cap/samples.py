"""CAP documents for the tests, written out as text (not built with our renderer, so they test the parser on
its own), and an OASIS schema validator."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import xmlschema

XSD = Path(__file__).with_name("CAP-v1.2.xsd")

ZH_INFO = """
  <info>
    <language>zh-CN</language>
    <category>Env</category>
    <event>重污染天气预警</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <expires>2026-11-28T18:00:00+08:00</expires>
    <senderName>市环保局</senderName>
    <headline>长治市发布重污染天气橙色预警</headline>
    <description>预计11月27日至29日出现重污染天气过程。</description>
    <instruction>老人和儿童减少户外活动。</instruction>
    <parameter><valueName>topic</valueName><value>env.heavy-pollution</value></parameter>
    <parameter><valueName>groups</valueName><value>elderly, child</value></parameter>
    <parameter><valueName>level</valueName><value>orange</value></parameter>
    <area>
      <areaDesc>城区</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>140402</value></geocode>
    </area>
    <area>
      <areaDesc>郊区</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>140411</value></geocode>
    </area>
  </info>"""

EN_INFO = """
  <info>
    <language>en-US</language>
    <category>Env</category>
    <event>Heavy air pollution warning</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <headline>Orange heavy pollution warning for Changzhi</headline>
    <description>Heavy pollution is expected from 27 to 29 November.</description>
    <instruction>Older people and children should stay indoors.</instruction>
    <parameter><valueName>topic</valueName><value>env.heavy-pollution</value></parameter>
  </info>"""


def document(*, identifier: str = "14040000100000_20261127080000_0", sender: str = "cap.changzhi.gov.cn",
             sent: str = "2026-11-27T08:00:00+08:00", status: str = "Actual", msg_type: str = "Alert",
             scope: str = "Public", references: str | None = None, infos: str = ZH_INFO + EN_INFO,
             prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    refs = f"\n  <references>{references}</references>" if references is not None else ""
    return (f"""{prolog}<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>{sender}</sender>
  <sent>{sent}</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>{scope}</scope>{refs}{infos}
</alert>
""").encode()


def zh_info(**replace: str) -> str:
    """ZH_INFO with some lines replaced: {old text: new text}."""
    text = ZH_INFO
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@cache
def schema() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(XSD))
