from pathlib import Path

from features.schema import contract_markdown

DOC = Path(__file__).parents[2] / "docs" / "data-contract.md"


def test_contract_doc_matches_schema():
    text = DOC.read_text()
    generated = text.split("<!-- generated: start -->\n")[1].split("<!-- generated: end -->")[0]
    assert generated == contract_markdown(), (
        "docs/data-contract.md is stale: regenerate its table reference from features.schema"
    )


def test_feature_doc_matches_catalogue():
    from features.catalogue import catalogue_markdown

    text = (DOC.parent / "features.md").read_text()
    generated = text.split("<!-- generated: start -->\n")[1].split("<!-- generated: end -->")[0]
    assert generated == catalogue_markdown(), "docs/features.md is stale: regenerate its table"
