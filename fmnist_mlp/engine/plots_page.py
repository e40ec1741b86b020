"""An offline template for `dvc plots show`: vega, vega-lite and vega-embed inline, no CDN.

The libraries are vl-convert-python's bundle (a pinned package of requirements.lock, so the page
needs no network); `make setup` points DVC at the page (``plots.html_template``). Plots are drawn
as SVG, each div marked ``data-rendered``, or ``data-error`` with the message
(tests/test_plots_page.py reads both in headless Chromium).
Usage: python -m fmnist_mlp.engine.plots_page OUT_HTML
"""

import argparse
from pathlib import Path

VEGA_LITE = "5.21"  # DVC's templates are vega-lite v5 specs

# The bundle's own module code: the libraries as globals, vegaEmbed wrapped with the SVG
# renderer and a mark on each plot's div saying whether it drew.
SNIPPET = """
window.vega = vega;
window.vegaLite = vegaLite;
window.vegaEmbed = function (el, spec, opts) {
  var div = document.querySelector(el);
  return vegaEmbed(el, spec, Object.assign({renderer: "svg"}, opts || {}))
    .then(function (result) { div.dataset.rendered = "yes"; return result; })
    .catch(function (e) { div.dataset.error = String(e); console.error(e); });
};
"""

# DVC fills {plot_divs} and {refresh_tag}; with no {scripts} slot it adds no CDN script tags.
PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- {credits}, inline: this page needs no network (python -m fmnist_mlp.engine.plots_page) -->
    <script>
{script}
    </script>
    <style>
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def page() -> str:
    import vl_convert

    credits = (f"vega {vl_convert.get_vega_version()}, vega-lite {VEGA_LITE}, vega-embed "
               f"{vl_convert.get_vega_embed_version()} of vl-convert-python "
               f"{vl_convert.__version__}")
    script = vl_convert.javascript_bundle(SNIPPET, vl_version=VEGA_LITE)
    return PAGE.format(credits=credits, script=script.replace("</script", "<\\/script"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="plots_page", description=__doc__.splitlines()[0])
    parser.add_argument("out_html", metavar="OUT_HTML", type=Path)
    out = parser.parse_args(argv).out_html
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page(), encoding="utf-8")
    tmp.replace(out)


if __name__ == "__main__":
    main()
