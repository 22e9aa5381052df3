"""Liked-songs parsers (YouTube Music copy, Takeout CSV, items), normalisation and matching."""

import pytest
from conftest import require_shared

from helpers.errors import InputError
from helpers.recommend import liked
from helpers.recommend.recommender import Library


@pytest.fixture(scope="module")
def real_list():
    return liked.parse_ytmusic_copy(require_shared("seed", "ytmusic_liked_songs.txt"))


def _find(songs, title):
    found = [s for s in songs if s.title == title]
    assert found, f"{title!r} not parsed"
    return found[0]


def test_real_list_parses_every_block(real_list):
    # 718 blank-separated blocks: 717 songs and one stray duration line ("1:02:50").
    assert len(real_list) == 717
    assert [(b.text, b.reason) for b in real_list.skipped] == [("1:02:50", "a duration without a song")]
    # The file starts with a blank line and ends without a newline.
    assert real_list[0].title == "Watercolour (Full Version)"
    assert real_list[0].artists == ("Pendulum",) and real_list[0].album == "Immersion"
    assert real_list[-1].title == "Original Prankster (feat. Redman)"
    assert real_list[-1].album == "Estrellas De Los 2000 Vol. 1"
    assert all(s.title and s.artists for s in real_list)


def test_real_list_multi_artist_blocks(real_list):
    lullaby = _find(real_list, "Lullaby (feat. BISHØP & Bishop)")
    assert lullaby.artists == ("Chocolate Puma", "Firebeatz") and lullaby.album == "Lullaby"
    kings_dead = _find(real_list, "King's Dead")
    assert kings_dead.artists == ("Jay Rock", "Kendrick Lamar", "Future", "James Blake")
    # A comma inside a name is not a separator line: "Tyler, The Creator" stays one artist.
    cash = _find(real_list, "Cash In Cash Out")
    assert cash.artists == ("Pharrell Williams", "21 Savage", "Tyler, The Creator")
    assert cash.artist == "Pharrell Williams, 21 Savage & Tyler, The Creator"
    # "&" inside one line is part of the name or title, not a separator.
    assert _find(real_list, "Desire (Gryffin Remix)").artists == ("Years & Years",)
    assert _find(real_list, "Head & Heart (feat. MNEK)").artists == ("Joel Corry",)
    assert sum(len(s.artists) > 1 for s in real_list) == 142


def test_real_list_videos(real_list):
    videos = [s for s in real_list if s.kind == "video"]
    assert len(videos) == 22 and all(s.album is None and s.uploader for s in videos)
    # "Artist - Title" video titles name the artist; the channel is kept as uploader.
    here = _find(real_list, "Here (Lucian Remix)")
    assert here.artists == ("Alessia Cara",) and here.uploader == "Trap Nation"
    baggage = _find(real_list, "Baggage (KREAM Remix)")
    assert baggage.artists == ("Gryffin", "Gorgon City", "AlunaGeorge")
    # A dash inside a sentence or inside brackets is not an artist separator.
    for title in ("Oliver Heldens live from The Royal Concertgebouw in Amsterdam - June 2020",
                  "How Flume's Music Has Changed Over Time (2011 - 2020)",
                  "[2020] sienna sleep - TRANCE MIX 13.2"):
        assert _find(real_list, title).artists == (_find(real_list, title).uploader,)


def test_real_list_duplicates_are_spotted(real_list):
    unique = real_list.deduplicated()
    assert len(unique) < len(real_list)
    keys = [s.key() for s in unique]
    assert len(keys) == len(set(keys))
    # "Make Me Feel" is liked three times (once plain, twice as the Extended Mix).
    assert sum(s.key() == ("make me feel", "john summit") for s in real_list) == 3


def test_copy_with_durations_crlf_and_malformed_blocks():
    text = ("Song A\r\nArtist A\r\nAlbum A\r\n3:45\r\n\r\n"
            "Song B\r\nArtist B\r\n & \r\nArtist C\r\nAlbum B\r\nExtra line\r\n\r\n"
            "Song C\r\nArtist D\r\n & \r\n\r\n"
            "lonely line\r\n")
    parsed = liked.parse_ytmusic_copy(text)
    assert [s.title for s in parsed] == ["Song A"]
    assert parsed[0].duration == 225.0 and parsed[0].album == "Album A"
    reasons = [b.reason for b in parsed.skipped]
    assert len(reasons) == 3
    assert "expected one album line" in reasons[0]
    assert "separator" in reasons[1]
    assert "single line" in reasons[2]


def test_missing_or_empty_list_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        liked.parse_ytmusic_copy(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n1:02:50\n")
    with pytest.raises(InputError, match="no title/artist blocks"):
        liked.read_liked_file(empty)


@pytest.mark.parametrize("title, expected", [
    ("Prayer in C (Robin Schulz Radio Edit)", "prayer in c"),
    ("Move Ya Body [Shelter Remix] (feat. Nikki Ambers)", "move ya body"),
    ("Love All Day feat. Leela D (Extended Mix) (feat. Leela D)", "love all day"),
    ("Give Her Right Back ft. [Dances With White Girls]", "give her right back"),
    ("Watercolour (Full Version)", "watercolour"),
    ("Jump Around (30 Years Remaster)", "jump around"),
    ("Heroes - 2017 Remaster", "heroes"),
    ("The Island, Pt. 1 (Dawn) [Skrillex Remix]", "the island pt 1 dawn"),
    ("It Don’t Matter", "it dont matter"),
    ("Say a Prayer For Me", "say a prayer for me"),
    ("Head & Heart (feat. MNEK)", "head and heart"),
    ("Hey - You", "hey you"),
])
def test_normalize_title(title, expected):
    assert liked.normalize_title(title) == expected


def test_normalize_artist():
    assert liked.normalize_artist("RÜFÜS DU SOL") == "rufus du sol"
    assert liked.normalize_artist("BISHØP") == "bishop"
    assert liked.normalize_artist("DomDollaVEVO") == "domdolla"
    assert liked.normalize_artist("Various Artists - Topic") == "various artists"
    assert liked.normalize_artist("The Offspring") == "offspring"


def test_takeout_library_csv_with_numbered_artists(tmp_path):
    path = tmp_path / "music-library-songs.csv"
    path.write_bytes("\ufeffVideo ID,Song Title,Album Title,Artist Name 1,Artist Name 2,Duration Seconds\n"
                     "dQw4w9WgXcQ,\"No Woman, No Cry (Live)\",Live!,Bob Marley,The Wailers,427\n"
                     "kJQP7kiw5Fk,Despacito,VIDA,Luis Fonsi,,229\n"
                     ",,,,,\n"
                     "not-an-id,,,,,\n".encode("utf-8"))
    parsed = liked.read_liked_file(path)
    assert [s.title for s in parsed] == ["No Woman, No Cry (Live)", "Despacito"]
    first = parsed[0]
    assert first.artists == ("Bob Marley", "The Wailers") and first.album == "Live!"
    assert first.video_id == "dQw4w9WgXcQ" and first.duration == 427.0
    assert first.url == "https://music.youtube.com/watch?v=dQw4w9WgXcQ"
    assert parsed[1].artists == ("Luis Fonsi",)
    assert [b.reason for b in parsed.skipped] == ["no title and no video id"]


def test_takeout_song_url_variant_and_old_playlist_format(tmp_path):
    songs = tmp_path / "songs.csv"
    songs.write_text("Song URL,Song Title,Album Title,Artist Names\n"
                     "https://music.youtube.com/watch?v=kJQP7kiw5Fk&feature=share,Despacito,VIDA,Luis Fonsi\n")
    parsed = liked.read_liked_file(songs)
    assert parsed[0].video_id == "kJQP7kiw5Fk" and parsed[0].artists == ("Luis Fonsi",)

    playlist = tmp_path / "Liked music.csv"
    playlist.write_text("Playlist Id,Channel Id,Time Created,Time Updated,Title,Description,Visibility\n"
                        "LM,UC123,2020-01-01,2024-01-01,Liked music,,Private\n\n"
                        "Video Id,Time Added\n"
                        "dQw4w9WgXcQ,2024-03-01 10:00:00 UTC\n")
    ids_only = liked.read_liked_file(playlist)
    assert len(ids_only) == 1
    song = ids_only[0]
    assert song.kind == "url" and song.title is None and song.video_id == "dQw4w9WgXcQ"
    assert song.url == "https://music.youtube.com/watch?v=dQw4w9WgXcQ"


def test_csv_without_music_columns_is_rejected(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("url,name\nhttp://x,y\n")
    with pytest.raises(InputError, match="Video ID"):
        liked.read_takeout_csv(path)


def test_items_are_classified(tmp_path):
    audio = tmp_path / "song.ogg"
    audio.write_bytes(b"x")
    items = liked.liked_from_items(["blues.00000", str(audio), "https://youtu.be/dQw4w9WgXcQ", " "])
    assert [s.kind for s in items] == ["id", "path", "url"]
    assert items[2].video_id == "dQw4w9WgXcQ"


@pytest.fixture(scope="module")
def gtzan_meta():
    return Library.gtzan().meta


def test_match_to_library_needs_title_and_artist(gtzan_meta):
    songs = [
        liked.LikedSong("No Woman, No Cry (Live)", ("Bob Marley & The Wailers",)),
        liked.LikedSong("Is This Love? [Remastered]", ("Bob Marley",)),
        liked.LikedSong("No Woman No Cry", ("Someone Else",)),  # right title, wrong artist
        liked.LikedSong("Buffalo Soldier", ()),  # no artist: never matched on title alone
        liked.LikedSong("Watercolour", ("Pendulum",)),
    ]
    matched = liked.match_to_library(songs, gtzan_meta)
    assert matched["library_id"].tolist() == ["reggae.00001.wav", "reggae.00000.wav", None, None, None]
    assert matched.loc[0, "title_score"] == 100.0


def test_fetch_plan_prefers_video_ids_and_dedupes():
    songs = [liked.LikedSong("Lullaby (feat. BISHØP)", ("Chocolate Puma", "Firebeatz")),
             liked.LikedSong("Lullaby", ("Chocolate Puma",)),
             liked.LikedSong(None, kind="url", ref="https://music.youtube.com/watch?v=dQw4w9WgXcQ",
                             video_id="dQw4w9WgXcQ")]
    plan = liked.fetch_plan(songs)
    assert plan["how"].tolist() == ["search", "video id"]
    assert plan.loc[0, "url"].endswith("search_query=Chocolate+Puma+%26+Firebeatz+Lullaby")
    assert plan.loc[1, "url"] == "https://music.youtube.com/watch?v=dQw4w9WgXcQ"
