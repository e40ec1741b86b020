"""An HTML template for `dvc plots show` that needs no network: vega, vega-lite and vega-embed
inline.

DVC's own page loads the three libraries from a CDN, so offline every Vega plot stays blank. This
module downloads the same versions DVC asks for from the npm registry, checks each tarball
against the registry's SHA-512 (pinned below), and writes one page with the three minified builds
inside. `make setup` runs it and points DVC at the page (``dvc config --local
plots.html_template``).

The page also makes every plot an SVG and marks its div: ``data-rendered`` once vega-embed has
drawn it, ``data-error`` with the message if it could not (tests/test_plots_page.py reads both in
headless Chromium).

Usage: python -m fmnist_mlp.engine.plots_page OUT_HTML
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.error
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
    except (OSError, urllib.error.URLError, TimeoutError) as e:
        raise DataError(f"{url}: cannot download ({type(e).__name__}: {e})") from None
    check_integrity(name, data, integrity)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        source = tar.extractfile(f"package/{member}").read().decode("utf-8")
    return source.replace("</script", "<\\/script")  # cannot end the inline <script> early


def page(sources: dict[str, str]) -> str:
    """The template: DVC replaces {plot_divs} and {refresh_tag}; no {scripts}, so DVC adds no
    CDN script tags."""
    scripts = "\n".join(f"    <script>/* {name} */\n{js}\n    </script>"
                        for name, js in sources.items())
    scripts += f"\n    <script>{EMBED_HOOK}    </script>"
    credits = ", ".join(f"{name} {version}" for name, version, _, _ in LIBRARIES)
    return PAGE.format(credits=credits, scripts=scripts)


def build(out: Path, fetch=download) -> None:
    sources = {f"{name} {version}": library_source(name, version, member, integrity, fetch)
               for name, version, member, integrity in LIBRARIES}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page(sources), encoding="utf-8")
    tmp.replace(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        usage = __doc__.splitlines()[-1]
        print(f"plots_page: error: expected 1 argument, got {len(argv)}. {usage}",
              file=sys.stderr)
        return 2
    try:
        build(Path(argv[0]))
    except DataError as e:
        print(f"plots_page: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
