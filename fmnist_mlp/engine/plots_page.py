"""An offline template for `dvc plots show`: vega, vega-lite and vega-embed inline, no CDN.

The versions DVC's CDN page asks for come from the npm registry, each tarball checked against
npm's integrity (pinned below); `make setup` points DVC at the page (``plots.html_template``).
Plots are drawn as SVG, each div marked ``data-rendered``, or ``data-error`` with the message
(tests/test_plots_page.py reads both in headless Chromium).
Usage: python -m fmnist_mlp.engine.plots_page OUT_HTML
"""

import argparse
import base64
import hashlib
import io
import sys
import tarfile
from pathlib import Path

from fmnist_mlp.core.errors import DataError
from fmnist_mlp.dataset.fetch import download

REGISTRY = "https://registry.npmjs.org"
TIMEOUT = 120  # seconds for one tarball
# name, version (those of DVC's CDN page, dvc_render/vega.py), file in the tarball, npm integrity
LIBRARIES = (
    ("vega", "5.20.2", "build/vega.min.js",
     "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw=="),
    ("vega-lite", "5.2.0", "build/vega-lite.min.js",
     "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw=="),
    ("vega-embed", "6.18.2", "build/vega-embed.min.js",
     "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg=="),
)

# Wraps vega-embed: SVG renderer, and a mark on each plot's div saying whether it drew.
EMBED_HOOK = """
(function () {
  var embed = window.vegaEmbed;
  window.vegaEmbed = function (el, spec, opts) {
    var div = document.querySelector(el);
    return embed(el, spec, Object.assign({renderer: "svg"}, opts || {}))
      .then(function (result) { div.dataset.rendered = "yes"; return result; })
      .catch(function (e) { div.dataset.error = String(e); console.error(e); });
  };
})();
"""

# DVC fills {plot_divs} and {refresh_tag}; with no {scripts} slot it adds no CDN script tags.
PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- {credits}, inline: this page needs no network (python -m fmnist_mlp.engine.plots_page) -->
{scripts}
    <style>
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def tarball_url(name: str, version: str) -> str:
    return f"{REGISTRY}/{name}/-/{name}-{version}.tgz"


def check_integrity(name: str, data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise DataError(f"{name}: the tarball's {algorithm} is {actual}, expected {expected} "
                        f"(npm's integrity of this version)")


def library_source(name: str, version: str, member: str, integrity: str,
                   fetch=download) -> str:
    """The minified build ``member`` of the npm package ``name@version``, checked."""
    url = tarball_url(name, version)
    try:
        data = fetch(url, TIMEOUT)
    except OSError as e:  # URLError and TimeoutError among them
        raise DataError(f"{url}: cannot download ({type(e).__name__}: {e})") from None
    check_integrity(name, data, integrity)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        source = tar.extractfile(f"package/{member}").read().decode("utf-8")
    return source.replace("</script", "<\\/script")  # cannot end the inline <script> early


def page(sources: dict[str, str]) -> str:
    """The template with ``sources`` ("name version": minified build) inline."""
    scripts = "".join(f"    <script>/* {name} */\n{js}\n    </script>\n"
                      for name, js in sources.items())
    scripts += f"    <script>{EMBED_HOOK}    </script>"
    return PAGE.format(credits=", ".join(sources), scripts=scripts)


def build(out: Path, fetch=download) -> None:
    sources = {f"{name} {version}": library_source(name, version, member, integrity, fetch)
               for name, version, member, integrity in LIBRARIES}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page(sources), encoding="utf-8")
    tmp.replace(out)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="plots_page", description=__doc__.splitlines()[0])
    parser.add_argument("out_html", metavar="OUT_HTML", type=Path)
    try:
        build(parser.parse_args(argv).out_html)
    except DataError as e:
        parser.exit(1, f"plots_page: error: {e}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
