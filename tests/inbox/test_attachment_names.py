"""Upload file names: plain names kept as given, paths and control characters refused with a
422, and the ``Content-Disposition`` that names a download. Pure."""

from __future__ import annotations

import pytest

from inbox.attachments.names import MAX_NAME_CHARS, check_name, content_disposition
from inbox.core.errors import InvalidInput


@pytest.mark.parametrize("name", [
    "cat.jpg", "Überweisung März.pdf", "两只猫.png", "a", "x" * MAX_NAME_CHARS, ".bashrc",
    "..hidden", "report (final) v2.docx", "😀.gif",
])
def test_a_plain_file_name_is_kept_as_given(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(("name", "why"), [
    ("", "1..255"), ("x" * (MAX_NAME_CHARS + 1), "1..255"),
    ("dir/cat.jpg", "path"), ("..\\boot.ini", "path"), ("/etc/passwd", "path"),
    (".", "path"), ("..", "path"),
    ("a\x00b", "control"), ("tab\there", "control"), ("new\nline", "control"),
    ("rtl\u202egpj.exe", "control"), ("para\u2029", "control"), ("zw\u200bsp", "control"),
    (" lead.txt", "whitespace"), ("trail.txt ", "whitespace"),
    ("lone\ud800.txt", "Unicode"),
])
def test_paths_control_characters_and_odd_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_name(name)
    assert info.value.status == 422 and why in str(info.value)


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    assert content_disposition("cat.jpg", inline=True) == (
        "inline; filename=\"cat.jpg\"; filename*=UTF-8''cat.jpg")
    value = content_disposition('Mär "50%"\\x.pdf', inline=False)
    assert value == ("attachment; filename=\"M_r _50___x.pdf\"; "
                     "filename*=UTF-8''M%C3%A4r%20%2250%25%22%5Cx.pdf")
    assert value.isascii()
