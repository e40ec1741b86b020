"""The offline page for `dvc plots show`: checked tarballs, the libraries inline, DVC's slots."""

import base64
import hashlib
import io
import tarfile

import pytest

from fmnist_mlp.core.errors import DataError
from fmnist_mlp.engine import plots_page


def tarball(member: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = text.encode()
        info = tarfile.TarInfo(f"package/{member}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_library_source_checks_the_tarball_and_escapes_script_ends():
    data = tarball("build/x.min.js", 'var s = "</script>";')
    source = plots_page.library_source("x", "1.0.0", "build/x.min.js", integrity(data),
                                       fetch=lambda url, timeout: data)
    assert source == 'var s = "<\\/script>";'
    with pytest.raises(DataError, match="x: the tarball's sha512 is"):
        plots_page.library_source("x", "1.0.0", "build/x.min.js", integrity(b"other"),
                                  fetch=lambda url, timeout: data)


def test_a_failed_download_names_the_url():
    def offline(url, timeout):
        raise OSError("no network")

    with pytest.raises(DataError, match=r"https://registry.npmjs.org/vega/-/vega-5.20.2.tgz: "
                                        r"cannot download \(OSError: no network\)"):
        plots_page.library_source("vega", "5.20.2", "build/vega.min.js", "sha512-x", offline)


def test_page_has_dvc_placeholders_and_no_remote_script(tmp_path):
    fake = {lib[0]: tarball(lib[2], f"window.{lib[0].replace('-', '_')} = 1;")
            for lib in plots_page.LIBRARIES}
    libraries = tuple((name, version, member, integrity(fake[name]))
                      for name, version, member, _ in plots_page.LIBRARIES)
    pinned = plots_page.LIBRARIES
    plots_page.LIBRARIES = libraries
    try:
        plots_page.build(tmp_path / "page.html",
                         fetch=lambda url, timeout: fake[url.split("/")[3]])
    finally:
        plots_page.LIBRARIES = pinned
    html = (tmp_path / "page.html").read_text()
    assert "{plot_divs}" in html and "{refresh_tag}" in html and "{scripts}" not in html
    assert "src=" not in html and "window.vega_embed = 1;" in html
    assert html.index("window.vega_lite") < html.index("window.vega_embed") < \
        html.index('renderer: "svg"')
    assert not (tmp_path / "page.html.tmp").exists()
