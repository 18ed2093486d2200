"""resources/: every file the app, the bundles and the installers read is there and valid."""

from __future__ import annotations

import configparser
import string
import struct
import xml.etree.ElementTree as ElementTree

import pytest

from core.resource_files import read_resource_bytes, read_resource_text, resource
from gui.app_icon import ICON_SIZES, app_icon
from gui.theme import DARK, LIGHT, STYLE_SHEET, style_sheet


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icon_png_has_its_size(size: int) -> None:
    data = read_resource_bytes("icons", f"specchat-{size}.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (size, size)


def test_icon_svg_is_the_source() -> None:
    root = ElementTree.fromstring(read_resource_text("icons", "specchat.svg"))
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 256 256"


def test_app_icon_holds_every_size(qapp) -> None:
    icon = app_icon()
    assert not icon.isNull()
    assert sorted(size.width() for size in icon.availableSizes()) == sorted(ICON_SIZES)


def test_desktop_entry_launches_specchat() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(read_resource_text("linux", "specchat.desktop"))
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "specchat"
    assert entry["Icon"] == "specchat"
    assert entry["Categories"].endswith(";")


def test_metainfo_names_the_desktop_entry() -> None:
    root = ElementTree.fromstring(
        read_resource_text("linux", "io.github.specchat.SpecChat.metainfo.xml")
    )
    assert root.findtext("id") == "io.github.specchat.SpecChat"
    assert root.findtext("launchable") == "specchat.desktop"
    assert root.findtext("project_license") == "MIT"


def test_style_sheet_fills_every_placeholder() -> None:
    template = string.Template(read_resource_text("themes", STYLE_SHEET))
    assert template.get_identifiers()  # it is a template, not a frozen copy
    for theme in (LIGHT, DARK):
        sheet = style_sheet(theme)
        assert "$" not in sheet
        assert theme.accent in sheet and theme.border in sheet


def test_missing_resource_raises_file_not_found() -> None:
    assert not resource("icons", "no-such-icon.png").is_file()
    with pytest.raises(FileNotFoundError):
        read_resource_text("icons", "no-such-icon.png")
