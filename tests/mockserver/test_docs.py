"""/docs and /redoc work offline: every asset they load is served by the emulator itself."""

from __future__ import annotations

import re

from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform


async def test_docs_pages_load_only_assets_the_emulator_serves() -> None:
    with QcogPlatform.in_process(Settings(api_key="k")) as started:
        async with started.http() as web:
            for page, marker in (("/docs", "SwaggerUIBundle"), ("/redoc", "<redoc")):
                answer = await web.get(page)
                assert answer.status_code == 200 and marker in answer.text
                urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?'([^']+)'""", answer.text)
                loaded = [u for pair in urls for u in pair if u]
                assert loaded, page
                assert not [u for u in loaded if u.startswith(("http:", "https:", "//"))], loaded
                for url in loaded:  # each one is here, and not an error page
                    asset = await web.get(url)
                    assert asset.status_code == 200 and len(asset.content) > 100, url
            assert "fonts.googleapis" not in (await web.get("/redoc")).text


async def test_the_document_says_how_to_authenticate_so_docs_offers_authorize() -> None:
    with QcogPlatform.in_process(Settings(api_key="k")) as started:
        async with started.http() as web:
            document = (await web.get("/openapi.json")).json()
        async with started.http() as web:
            web.headers["Authorization"] = "x-api-key k"  # what Authorize sends, pasted whole
            assert (await web.get("/api/v1/whoami")).status_code == 200
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schemes["apiKey"]["description"],
    }
    assert "x-api-key" in schemes["apiKey"]["description"]
    assert schemes["adminBasic"]["scheme"] == "basic"
    assert document["security"] == [{"apiKey": []}, {"adminBasic": []}]
