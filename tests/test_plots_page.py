"""The offline page for `dvc plots show`: the libraries inline, DVC's slots, nothing fetched.
(tests/test_pipeline.py draws every plot of it in headless Chromium.)"""

import re

from fmnist_mlp.engine import plots_page


def test_page_has_dvc_placeholders_one_inline_script_and_the_svg_hook(tmp_path):
    plots_page.main([str(tmp_path / "out" / "page.html")])
    html = (tmp_path / "out" / "page.html").read_text()
    assert "{plot_divs}" in html and "{refresh_tag}" in html and "{scripts}" not in html
    assert not re.search(r"<script[^>]*src=", html) and "https://" not in html.split("<script>")[0]
    assert html.count("<script>") == 1 and html.count("</script") == 1  # none ends it early
    script = html[html.index("<script>"):html.index("</script")]
    assert '{renderer:"svg"}' in script and 'div.dataset.rendered="yes"' in script
    assert re.search(r"<!-- vega \d+\.\d+\.\d+, vega-lite 5\.21, vega-embed \d+\.\d+\.\d+ of "
                     r"vl-convert-python \d", html)
    assert not (tmp_path / "out" / "page.html.tmp").exists()


def test_a_script_end_inside_the_bundle_is_escaped(monkeypatch):
    import vl_convert

    monkeypatch.setattr(vl_convert, "javascript_bundle", lambda snippet, vl_version: (
        f'var s = "</script>"; /* {vl_version} */ {snippet}'))
    html = plots_page.page()
    assert 'var s = "<\\/script>"; /* 5.21 */' in html and html.count("</script") == 1
