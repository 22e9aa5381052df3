"""Cleaning of provider lyrics (helpers.lyrics.text) on crafted Genius- and LRCLIB-style texts."""

from helpers.lyrics.text import clean_lyrics, stanzas, strip_timestamps

# As lyricsgenius returns a page: header glued to the first section header, "You might also
# like" glued between lines, a ticket advert, section headers with artists, zero-width
# characters inside words, non-breaking spaces, and "123Embed" glued to the last line.
GENIUS_PAGE = (
    "42 ContributorsTranslationsEspañolFrançaisCafé Niño Lyrics"
    "\u201cCafé Niño\u201d is a song about a morning café. Read More \n"
    "[Verse 1: Ana & José]\n"
    "Un café para el ni\u200bño\n"
    "Pour me a cup,\u00a0señor\n"
    "\n"
    "[Chorus]\n"
    "Oh, café, mon amour\n"
    "Crème brûlée at the door\n"
    "You might also like\n"
    "[Verse 2]Ça va, ça va, the morning's new\n"
    "Sing it through\n"
    "See Ana Live\nGet tickets as low as $45\n"
    "\n\n\n"
    "[Outro]\n"
    "Adiós, café123Embed"
)


def test_genius_debris_is_removed_and_lyrics_kept_exactly():
    cleaned = clean_lyrics(GENIUS_PAGE)
    assert cleaned == (
        "Un café para el niño\n"
        "Pour me a cup, señor\n"
        "\n"
        "Oh, café, mon amour\n"
        "Crème brûlée at the door\n"
        "Ça va, ça va, the morning's new\n"
        "Sing it through\n"
        "\n"
        "Adiós, café"
    )


def test_accents_survive_and_stanza_breaks_stay_single():
    cleaned = clean_lyrics(GENIUS_PAGE)
    for word in ("café", "niño", "señor", "Crème", "brûlée", "Ça", "Adiós"):
        assert word in cleaned
    assert "\n\n\n" not in cleaned
    assert len(stanzas(cleaned)) == 3


def test_decomposed_accents_are_composed_not_dropped():
    decomposed = "Cafe\u0301 con nin\u0303o\nline two of the song"
    assert clean_lyrics(decomposed).splitlines()[0] == "Café con niño"


def test_section_headers_can_be_kept():
    text = "[Chorus]\nLa la land\n[Bridge]\nOver the hill"
    assert clean_lyrics(text, section_headers=False) == text
    assert clean_lyrics(text) == "La la land\nOver the hill"


def test_lyrics_with_brackets_inside_a_line_are_not_section_headers():
    text = "I said [quietly] hello\nand you said [nothing]"
    assert clean_lyrics(text) == text


def test_a_song_ending_in_the_word_embed_loses_only_genius_counter():
    assert clean_lyrics("we embed the stars\nin our hearts7Embed") == "we embed the stars\nin our hearts"


def test_lrc_timestamps_and_tags_are_removed():
    synced = "[ar: Someone]\n[00:12.34] First line\n[00:15.00]Second línea\n[01:02.5] Third"
    assert strip_timestamps(synced).splitlines() == ["First line", "Second línea", "Third"]
    assert clean_lyrics(synced) == "First line\nSecond línea\nThird"


def test_empty_and_missing_texts_give_empty_string():
    assert clean_lyrics(None) == ""
    assert clean_lyrics("   \n\u200b\n") == ""


def test_score_typesetting_residue_is_removed_but_the_word_unfold_is_not():
    text = "And this should be his customary\nunfold 30\nattitude\nThe gay face of nature doth unfold,"
    assert clean_lyrics(text) == "And this should be his customary\nattitude\nThe gay face of nature doth unfold,"


def test_embedded_corpus_loses_only_residue_lines():
    from helpers import data

    songs = data.load_public_domain_lyrics()
    cleaned = songs["lyrics"].map(clean_lyrics)
    assert not cleaned.str.contains(r"^unfold \d+$", regex=True, flags=2 | 8).any()  # re.I | re.M
    words_before = songs["lyrics"].str.split().str.len().sum()
    words_after = cleaned.str.split().str.len().sum()
    assert words_before - words_after == 2 * 103  # 103 residue lines of two words ("unfold N")
