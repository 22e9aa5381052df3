"""Music Recommendation Study: genre models, labelling, lyrics and recommendations.

Modules (one concern each)
--------------------------
data             the embedded GTZAN table, splits, artist index and lyrics sample; user CSVs
paths            where data, reports and notebooks live; environment overrides
errors           one-line user-facing error types
exploration      descriptive statistics of the table and artist index (notebook 01)
constants        sample rate and STFT frame constants shared by audio and features
audio            decoding (libsndfile, shipped ffmpeg), resampling, windowing, and the one
                 validation rule set every audio entry point uses
features         the 58 GTZAN-table features (``FEATURE_COLUMNS``, ``extract_file``), extended set
batch            parallel, cached, failure-tolerant extraction of folders (``music-study extract``)
models           scikit-learn pipelines by name, feature conditioning, safe model files
evaluation       tuning by artist-grouped CV, bootstrap intervals, the study reproduced
ingest           URLs to local audio through yt-dlp and the shipped ffmpeg; playlists; disk quota
netsafe          which URLs may be fetched: http(s) of public hosts, every connection checked
predict          whole-song prediction by duration-weighted window vote
store            the SQLite label store: songs, window features, predictions, label events, likes
active           active-learning query strategies, retraining with held-out metrics, simulation
labeler          the ipywidgets labeler that writes every click to the store
web              the Flask page: paste a URL or upload a file, confirm or correct the genre
jobs             background jobs of the web page, persisted in the label store's file
lyrics_fetch     Genius and LRCLIB providers with validation, retries and a cache
lyrics_validate  title/artist normalisation and song-likeness checks
lyrics_text      cleaning of provider debris, keeping accents and stanzas
lyrics           tokens, term frequency, TF-IDF, line-by-line VADER sentiment
lyrics_plots     word clouds, top-term bars, sentiment plots
liked            liked-songs lists (YouTube Music copy, Takeout CSV, ids) and matching
recommend        similarity spaces, per-liked-song retrieval, hub correction, MMR, artist cap, reasons
recommend_eval   simulated users, baselines, precision/recall, coverage, k-occurrence, space comparison
recommend_plots  figures of the recommendation evaluation (notebook 07)
stats            bootstrap intervals shared by every evaluation
report           papermill runner that renders every notebook into ``reports/``
cli              the ``music-study`` command
"""

__version__ = "0.1.0"
