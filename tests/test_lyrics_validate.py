"""Title/artist normalisation, fuzzy matching and song-likeness checks (helpers.lyrics.validate)."""

import pytest

from helpers.lyrics.validate import (
    normalise_artist,
    normalise_title,
    song_likeness_problems,
    strip_decorations,
    validate_hit,
)

SONG = "\n".join([
    "Down by the river where the willows grow",
    "I waited for the morning and the morning was slow",
    "The water kept on talking in a language I know",
    "",
    "Carry me home, carry me home",
    "Over the hills where the wild winds roam",
])


@pytest.mark.parametrize("title,expected", [
    ("Levels (Radio Edit)", "levels"),
    ("Strobe (Extended Mix)", "strobe"),
    ("Wake Me Up (feat. Aloe Blacc)", "wake me up"),
    ("Hey Jude - Remastered 2015", "hey jude"),
    ("Titanium feat. Sia", "titanium"),
    ("Café del Mar (Original Mix) [feat. X]", "cafe del mar"),
    ("Don’t Stop Me Now", "dont stop me now"),
    ("Live Forever", "live forever"),  # a version word that is part of the title stays
    ("With or Without You", "with or without you"),
])
def test_titles_lose_version_decorations_case_accents_and_punctuation(title, expected):
    assert normalise_title(title) == expected


def test_search_queries_keep_the_title_as_written():
    assert strip_decorations("Niño Bonito (feat. X) [Live]") == "Niño Bonito"


@pytest.mark.parametrize("artist,expected", [
    ("The Animals", "animals"),
    ("Calvin Harris feat. Rihanna", "calvin harris"),
    ("Beyoncé", "beyonce"),
])
def test_artists_are_reduced_to_the_primary_artist(artist, expected):
    assert normalise_artist(artist) == expected


def test_the_dickens_answer_is_rejected_for_its_artist():
    verdict = validate_hit("The Animals", "House of the Rising Sun",
                           "Charles Dickens", "The House of the Rising Sun")
    assert not verdict.accepted
    assert any("Charles Dickens" in r and "artist" in r for r in verdict.reasons)


def test_a_book_chapter_with_the_searched_words_is_rejected_for_its_title():
    verdict = validate_hit("Someone", "Tell Me", "Someone", "Tell Me (Chapter 3)")
    assert not verdict.accepted and "title" in verdict.reasons[0]


@pytest.mark.parametrize("query,hit", [
    (("The Animals", "House of the Rising Sun"), ("Eric Burdon & The Animals", "House Of The Rising Sun")),
    (("Avicii", "Levels (Radio Edit)"), ("Avicii", "Levels")),
    (("Beyonce", "Halo"), ("Beyoncé", "Halo")),
    (("Simon & Garfunkel", "The Boxer"), ("Simon and Garfunkel", "The Boxer")),
])
def test_credited_variants_of_the_same_song_are_accepted(query, hit):
    verdict = validate_hit(*query, *hit, text=SONG)
    assert verdict.accepted, verdict.reasons


def test_a_different_artist_with_the_same_title_is_rejected():
    assert not validate_hit("Adele", "Hello", "Lionel Richie", "Hello").accepted
    assert not validate_hit("Simon & Garfunkel", "X", "Paul Simon", "X").accepted


def test_song_like_text_passes_and_prose_track_lists_and_stubs_fail():
    assert song_likeness_problems(SONG) == []
    prose = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
             "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
             "incredulity, it was the season of Light, it was the season of Darkness.\n") * 4
    assert any("prose" in p for p in song_likeness_problems(prose))
    tracks = "\n".join(f"{i}. Song number {i} (3:{i:02d})" for i in range(1, 13))
    assert any("track list" in p for p in song_likeness_problems(tracks))
    assert any("fewer" in p for p in song_likeness_problems("Instrumental"))
    assert any("more than" in p for p in song_likeness_problems("la la la la\n" * 1000))
