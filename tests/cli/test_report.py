"""``report.html``: one self-contained page (tables, curves, pictures inline), rewritten by ``tfcl report``; the
slow test opens the page of a real ``tfcl run`` in headless Chromium."""

import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

from tfcl.cli import main
from tfcl.cli.report import REPORT_PAGE, write_report

# Appended to a copy of the page: after loading, the body records how many images it has and how many are broken.
IMAGE_CHECK = """<script>window.addEventListener("load", () => {
  const broken = [...document.images].filter((image) => !(image.complete && image.naturalWidth > 0));
  document.body.setAttribute("data-images", document.images.length);
  document.body.setAttribute("data-broken-images", broken.length);
});</script>"""


def picture(tmp_path):
    path = tmp_path / "cat.png"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_the_page_holds_its_tables_curves_and_pictures_and_is_rewritten_from_its_data(tmp_path, capfd):
    page = write_report(
        tmp_path,
        {
            "title": "a run",
            "stages": [{"name": "Trainer", "seconds": 12.5, "result": "ran"}],
            "tables": [{"title": "topics", "columns": ["metric", "model", "chance"], "rows": [["hit@5", 0.9, 0.2]]}],
            "histories": {"CD-TOM": {"loss": [3.0, 2.0], "effective_rank": [4.0, 9.0]}},
            "answers": [
                {"title": "博文 post: 猫", "lines": ["#猫咪# 0.9"], "pictures": [["cat", str(picture(tmp_path))]]}
            ],
        },
    )
    html = page.read_text()
    assert "<td>hit@5</td>" in html and "0.900" in html and "Trainer" in html and "#猫咪# 0.9" in html
    assert html.count("data:image/png;base64,") == 2  # the curves and the picture, inline
    assert 'src="/' not in html and 'src="file:' not in html  # nothing outside the one file
    page.unlink()
    assert main(["report", str(tmp_path)]) == 0
    assert page.read_text() == html and str(page) in capfd.readouterr().out


def browser():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(page):
    """The DOM of ``page`` after it loaded in headless Chromium."""
    result = subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(browser() is None, reason="needs Chromium (Debian: apt-get install -y chromium)")
def test_the_main_job_s_report_loads_in_a_browser_with_every_image_and_the_answers(tmp_path, capfd):
    work_dir = tmp_path / "main"
    assert main(["run", "--work-dir", str(work_dir)]) == 0
    printed = capfd.readouterr().out
    page = work_dir / REPORT_PAGE
    assert f"report: {page}" in printed
    checked = tmp_path / "checked.html"
    checked.write_text(page.read_text().replace("</body>", IMAGE_CHECK + "</body>"))
    dom = dump_dom(checked)
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    assert images >= 4, "training curves and the answers' pictures"
    assert re.search(r'data-broken-images="(\d+)"', dom).group(1) == "0"
    for text in ("WeiboExampleGen", "Trainer", "hit@5", "t2i_recall@1", "博文预测话题 topics: #", "图片配博文"):
        assert text in dom, text
