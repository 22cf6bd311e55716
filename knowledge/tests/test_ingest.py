from __future__ import annotations

import io

import pytest

from knowledge.ingest import MAX_BYTES, IngestError, parse


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with real text content, written by hand (no generator dependency)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx_bytes() -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Exporting notebooks", level=1)
    document.add_paragraph("Choose File → Export to save a notebook.")
    document.add_heading("Formats", level=2)
    document.add_paragraph("Markdown or PDF", style="List Bullet")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_markdown_with_front_matter():
    doc = parse(
        "reset-sync.md",
        b"---\ntitle: Reset sync\ncategory: Technical Support\ntags: sync, android\nlanguage: en\n"
        b"status: published\n---\n\n## Steps\n\nOpen Settings.\n",
    )
    assert (doc.title, doc.category, doc.tags, doc.status) == (
        "Reset sync",
        "Technical Support",
        ["sync", "android"],
        "published",
    )
    assert doc.body == "## Steps\n\nOpen Settings."


def test_text_file_takes_its_title_from_the_name_and_decodes_legacy_encodings():
    doc = parse("billing_faq.txt", "Caf\u00e9 prices are in euros.".encode("cp1252"))
    assert doc.title == "Billing faq"
    assert doc.body == "Café prices are in euros."


def test_html_becomes_markdown_without_scripts():
    html = (
        b"<html><head><title>Offline mode</title><script>alert(1)</script></head><body>"
        b"<h2>Turn it on</h2><p>Open <b>Settings</b>.</p><ul><li>Pin notebooks</li></ul>"
        b"<style>p{}</style></body></html>"
    )
    doc = parse("offline.html", html)
    assert doc.title == "Offline mode"
    assert "## Turn it on" in doc.body
    assert "- Pin notebooks" in doc.body
    assert "alert" not in doc.body
    assert "p{}" not in doc.body


def test_pdf_text_is_extracted():
    doc = parse("guide.pdf", minimal_pdf("Two-factor codes expire after 30 seconds"))
    assert "Two-factor codes expire after 30 seconds" in doc.body
    assert doc.title == "Guide"


def test_docx_headings_and_lists_survive():
    doc = parse("export.docx", docx_bytes())
    assert doc.title == "Exporting notebooks"
    assert "## Formats" in doc.body
    assert "- Markdown or PDF" in doc.body


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("virus.exe", b"MZ...", "not supported"),
        ("empty.md", b"   \n ", "empty"),
        ("big.txt", b"x" * (MAX_BYTES + 1), "over the"),
        ("fake.pdf", b"hello, I am not a pdf", "not a PDF"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage", "could not be read"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "not a readable Word"),
        ("only-front-matter.md", b"---\ntitle: x\n---\n", "no text"),
    ],
)
def test_bad_files_get_a_clear_message(name, data, message):
    with pytest.raises(IngestError, match=message) as excinfo:
        parse(name, data)
    assert str(excinfo.value).startswith(name)
