"""Where ``messenger download`` writes: a name from the server is only ever a plain file name
in the chosen directory; a file the user named is replaced, another never. No I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from messenger_client.downloads import download_target, local_name


@pytest.mark.parametrize(("name", "expected"), [
    ("beach.jpg", "beach.jpg"),
    ("Überweisung März.pdf", "Überweisung März.pdf"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\autoexec.bat", "autoexec.bat"),
    ("/abs/path.txt", "path.txt"),
    (".bashrc", "bashrc"),
    ("..", "attachment-42"),
    ("dir/", "attachment-42"),
    ("", "attachment-42"),
    ("a\x00b\x1b[31m.txt", "ab[31m.txt"),
    ("  spaced.txt  ", "spaced.txt"),
])
def test_a_name_from_the_server_becomes_a_plain_file_name(name: str, expected: str) -> None:
    assert local_name(name, 42) == expected


def test_a_file_the_user_named_is_written_and_may_be_replaced() -> None:
    assert download_target("x.png", 1, Path("out/pic.png"), output_is_dir=False) == (
        Path("out/pic.png"), True)


def test_a_directory_or_no_output_gets_the_attachment_s_name_and_replaces_nothing() -> None:
    assert download_target("../x.png", 1, Path("pics"), output_is_dir=True) == (
        Path("pics/x.png"), False)
    assert download_target("x.png", 1, None, output_is_dir=False) == (Path("x.png"), False)
