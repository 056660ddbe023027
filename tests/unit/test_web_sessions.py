"""The web chat's cookies and what it keeps per browser."""

from __future__ import annotations

from bot.web.sessions import CookieSigner, Pictures, Session, Sessions, load_secret


def test_a_cookie_names_its_browser_until_forged_or_the_password_changes():
    signer = CookieSigner(b"secret", "pw")
    cookie = signer.issue()
    browser = signer.browser(cookie)
    assert browser is not None and cookie.startswith(browser + ".")
    signature = cookie.split(".")[1]
    forged = ("y" if signature[0] == "x" else "x") + signature[1:]  # never the signature itself (1 in 64 was)
    assert signer.browser(f"{browser}.{forged}") is None
    assert signer.browser("someone-else." + signature) is None
    assert signer.browser(None) is None and signer.browser("") is None
    assert CookieSigner(b"secret", "new password").browser(cookie) is None
    assert CookieSigner(b"other secret", "pw").browser(cookie) is None


def test_the_secret_is_made_once_and_kept_private(tmp_path):
    first = load_secret(None, tmp_path)
    assert load_secret(None, tmp_path) == first and len(first) == 64
    assert (tmp_path / "web-secret").stat().st_mode & 0o077 == 0
    assert load_secret("configured", tmp_path) == b"configured"


def test_pictures_stay_within_their_budget_and_with_their_session():
    pictures = Pictures(budget=250)
    alice, bob = Session(pictures), Session(pictures)
    old = alice.keep_picture(b"a" * 100)
    new = alice.keep_picture(b"b" * 100)
    assert alice.picture(old) == b"a" * 100 and bob.picture(old) is None
    bob.keep_picture(b"c" * 100)  # over the budget: the oldest goes
    assert alice.picture(old) is None and alice.picture(new) == b"b" * 100


def test_a_reload_replays_only_what_the_page_missed_and_live_events_reach_open_pages():
    session = Sessions().get("browser")
    session.publish({"type": "text", "text": "one"})
    page = session.listen()
    session.publish({"type": "text", "text": "two"})
    session.publish({"type": "progress", "text": "step 1/2"}, keep=False)
    assert [event["text"] for event in session.replay(1)] == ["two"]
    assert [page.get_nowait()["text"] for _ in range(2)] == ["two", "step 1/2"]
    session.close()
    assert page.get_nowait() is None
