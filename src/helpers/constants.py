"""The signal the features are defined on: sample rate and STFT frame constants, in one place.

Both :mod:`helpers.audio` (decoding, windowing) and :mod:`helpers.features` (the 58 table
columns) read these; neither imports the other for them.
"""

#: Sample rate of the decoded mono signal (librosa's default, the GTZAN table's rate).
SAMPLE_RATE = 22050
#: STFT frame length in samples (librosa's default).
N_FFT = 2048
#: STFT hop in samples (librosa's default).
HOP_LENGTH = 512
#: Number of MFCCs in the table.
N_MFCC = 20
#: Shortest signal the features are computed on, in seconds.
MIN_FEATURE_SECONDS = 1.0

# The default-model protocol: changing any of these makes every cached model file (and its
# compact copy) be rebuilt.
#: Bumped when the selection protocol changes, so cached selections are recomputed.
SELECTION_VERSION = 2
#: Bumped when the model card or the objects a model file carries change.
MODEL_CARD_VERSION = 4
#: Seed and tuning grid of the default-model selection (a fixed seed gives the same choice).
DEFAULT_SEED = 0
DEFAULT_GRID = "small"
MODEL_PROTOCOL = {"selection_version": SELECTION_VERSION, "card_version": MODEL_CARD_VERSION,
                  "seed": DEFAULT_SEED, "grid": DEFAULT_GRID}

#: Widest figure, in inches at 100 dpi, that a report page (1280-px window) shows at its natural
#: size; wider figures are shrunk and their labels become unreadable.
PAGE_WIDTH_INCHES = 10.5
