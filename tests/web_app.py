"""The web app as the web tests build it: small limits, a key, folders under the test's tmp."""

from __future__ import annotations

from helpers.web.app import create_app


def make_app(tmp_path, model, key: str, **options):
    """A testing app over *tmp_path*; *options* override the defaults (``tags=True`` for the
    music tags, off by default to keep the tests quick)."""
    settings = dict(store_path=tmp_path / "labels.sqlite", model=model,
                    upload_dir=tmp_path / "uploads", max_upload_bytes=5 * 2**20,
                    window_seconds=6.0, access_key=key, tags=False,
                    fetch_options={"download_dir": tmp_path / "downloads"})
    settings.update(options)
    app = create_app(**settings)
    app.config["TESTING"] = True
    return app
