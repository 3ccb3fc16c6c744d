from pathlib import Path

from features.schema import contract_markdown

DOC = Path(__file__).parents[2] / "docs" / "data-contract.md"


def test_contract_doc_matches_schema():
    text = DOC.read_text()
    generated = text.split("<!-- generated: start -->\n")[1].split("<!-- generated: end -->")[0]
    assert generated == contract_markdown(), (
        "docs/data-contract.md is stale: regenerate its table reference from features.schema"
    )
