"""Feature sets: a name, its columns and how to describe one window of audio.

``"gtzan"`` (default)
    :data:`FEATURE_COLUMNS`, the 58 columns of the GTZAN table.
``"extended"``
    Those 58, then ``spectral_contrast{1..7}_{mean,var}`` (six octave bands and the residual, from
    :func:`librosa.feature.spectral_contrast`), ``tonnetz{1..6}_{mean,var}`` (fifths x/y, minor
    thirds x/y, major thirds x/y, from :func:`librosa.feature.tonnetz` on the waveform),
    ``chroma_{C,Cs,D,Ds,E,F,Fs,G,Gs,A,As,B}_{mean,var}`` (each pitch class of ``chroma_stft``) and
    ``mfcc{1..20}_delta_{mean,var}`` (first-order MFCC deltas, :func:`librosa.feature.delta`):
    148 columns in all. :func:`feature_columns` lists them.
``"musicnn"``
    The learned embedding of :mod:`helpers.features.musicnn.embedding`: ``musicnn_msd_0`` ...
    ``musicnn_msd_199``, the mean over the window's 3-s patches of the penultimate layer of the
    pretrained ``MSD_musicnn`` network, at 16 kHz; a window needs one whole patch (3 s).
``"gtzan+musicnn"``
    The 58 ``gtzan`` columns, then the 200 ``musicnn`` ones (:func:`combine_feature_sets`):
    decoded once at 22 050 Hz, the musicnn part reads the window resampled to 16 kHz.

Each set is a :class:`FeatureSet` (name, columns, ``extract(signal, sr)``, sample rate, shortest
signal) in a registry: :func:`feature_set` returns one by name (an unknown name is refused with
the choices), and :func:`register_feature_set` adds one, which every consumer then offers (a
learned set decoded at 16 kHz needs nothing else). Each set declares the rate it is defined
at; a window is decoded once, at that rate. A set made of parts at different rates
(:func:`combine_feature_sets`) declares the highest of them and resamples the window for each
other part, so every part sees the rate it is defined at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from helpers.audio.decode import resample
from helpers.constants import MIN_FEATURE_SECONDS as MIN_SECONDS
from helpers.constants import SAMPLE_RATE
from helpers.errors import InputError
from helpers.features import gtzan, musicnn


@dataclass(frozen=True)
class FeatureSet:
    """A named way to describe one window of audio by a fixed list of numbers.

    Attributes
    ----------
    name : str
        What ``--feature-set`` / ``feature_set=`` call it.
    columns : tuple of str
        The names of the numbers, in order.
    extract : callable
        ``extract(signal, sr)`` -> a mapping from every name in *columns* to a float, or an
        array of ``len(columns)`` floats in *columns* order; *signal* is mono float32 at
        *sample_rate* and at least *min_seconds* long.
    sample_rate : int
        The rate the signal is decoded at for this set.
    min_seconds : float
        The shortest signal *extract* describes.
    parts : tuple of FeatureSet
        The sets a combined set is made of (:func:`combine_feature_sets`); empty otherwise.

    Examples
    --------
    A learned set joins by registration (numbers made up here):

    >>> import numpy as np
    >>> loudness = FeatureSet("loudness", ("peak", "mean_square"),
    ...                       lambda y, sr: np.array([np.abs(y).max(), np.mean(y * y)]))
    >>> loudness.describe(np.full(22050, 0.5, dtype=np.float32), 22050)
    {'peak': 0.5, 'mean_square': 0.25}
    """

    name: str
    columns: tuple[str, ...]
    extract: Callable[[np.ndarray, int], Mapping[str, float] | np.ndarray]
    sample_rate: int = SAMPLE_RATE
    min_seconds: float = MIN_SECONDS
    parts: tuple[FeatureSet, ...] = ()

    def describe(self, y: np.ndarray, sr: int) -> dict[str, float]:
        """Run :attr:`extract` on *y* and return ``{column: float}`` in :attr:`columns` order.

        Raises
        ------
        ValueError
            *sr* is not :attr:`sample_rate`, or the extractor returned other columns.
        """
        if sr != self.sample_rate:
            raise ValueError(f"feature set {self.name!r} is defined at {self.sample_rate} Hz, "
                             f"got {sr} Hz")
        values = self.extract(y, sr)
        if isinstance(values, Mapping):
            missing = [c for c in self.columns if c not in values]
            if missing:
                raise ValueError(f"feature set {self.name!r} gave no {', '.join(missing[:3])}")
            return {c: float(values[c]) for c in self.columns}
        values = np.asarray(values, dtype=float).ravel()
        if len(values) != len(self.columns):
            raise ValueError(f"feature set {self.name!r} gave {len(values)} values for "
                             f"{len(self.columns)} columns")
        return dict(zip(self.columns, values.tolist(), strict=True))


_REGISTRY: dict[str, FeatureSet] = {}


def register_feature_set(spec: FeatureSet, *, replace: bool = False) -> FeatureSet:
    """Make *spec* available by its name to :func:`feature_set` (and so to every consumer).

    Parameters
    ----------
    spec : FeatureSet
        The set.
    replace : bool
        Allow replacing a set registered under the same name (a second registration of a name
        is otherwise a mistake: two sets would answer to it).

    Returns
    -------
    FeatureSet
        *spec*.
    """
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"a feature set named {spec.name!r} is already registered")
    if len(set(spec.columns)) != len(spec.columns):
        raise ValueError(f"feature set {spec.name!r} names a column twice")
    _REGISTRY[spec.name] = spec
    return spec


def feature_set_names() -> tuple[str, ...]:
    """The registered feature sets' names, sorted.

    Examples
    --------
    >>> feature_set_names()
    ('extended', 'gtzan', 'gtzan+musicnn', 'musicnn')
    """
    return tuple(sorted(_REGISTRY))


def feature_set(name: str | FeatureSet) -> FeatureSet:
    """Return the registered feature set called *name* (a :class:`FeatureSet` is returned as is).

    Raises
    ------
    InputError
        No set has that name; the one-line message lists the choices.

    Examples
    --------
    >>> feature_set("gtzan").sample_rate, len(feature_set("gtzan").columns)
    (22050, 58)
    >>> feature_set("fancy")
    Traceback (most recent call last):
    ...
    helpers.errors.InputError: fancy: unknown feature set; choose one of extended, gtzan, gtzan+musicnn, musicnn
    """
    if isinstance(name, FeatureSet):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        # InputError is a ValueError: the command line reports it as bad input (exit status 2).
        raise InputError(name, "unknown feature set; choose one of "
                               + ", ".join(feature_set_names())) from None


_feature_set = feature_set  # window_features' argument of the same name hides the function


def feature_columns(feature_set: str = "gtzan") -> tuple[str, ...]:
    """Return the column names a feature set produces, in order (:attr:`FeatureSet.columns`).

    Examples
    --------
    >>> len(feature_columns("gtzan")), len(feature_columns("extended"))
    (58, 148)
    """
    return _feature_set(feature_set).columns



def combine_feature_sets(name: str, *parts: FeatureSet | str) -> FeatureSet:
    """A feature set of *parts*' columns side by side, in order, each at its own rate.

    The set is defined at the highest of the parts' rates (one decode per window); for a part
    defined at another rate the window is resampled (:func:`helpers.audio.decode.resample`, the
    decoder's own resampler) before that part describes it. A window must be long enough for
    every part.

    Parameters
    ----------
    name : str
        The combined set's name (e.g. ``"gtzan+musicnn"``).
    *parts : FeatureSet or str
        Two or more sets (or registered names); their columns must not overlap.

    Examples
    --------
    >>> both = combine_feature_sets("gtzan+musicnn", "gtzan", "musicnn")
    >>> len(both.columns), both.sample_rate, both.min_seconds
    (258, 22050, 3.0)
    """
    parts = tuple(feature_set(part) for part in parts)
    if len(parts) < 2:
        raise ValueError("a combined feature set needs two or more parts")
    rate = max(part.sample_rate for part in parts)

    def extract(y: np.ndarray, sr: int) -> dict[str, float]:
        values: dict[str, float] = {}
        for part in parts:
            signal = y if part.sample_rate == sr else resample(y, sr, part.sample_rate)
            values.update(part.describe(signal, part.sample_rate))
        return values

    columns = tuple(column for part in parts for column in part.columns)
    return FeatureSet(name, columns, extract, sample_rate=rate,
                      min_seconds=max(part.min_seconds for part in parts), parts=parts)


def _musicnn_extractor(y: np.ndarray, sr: int) -> np.ndarray:
    # looked up at call time: the package face loads the network code on first use only
    return musicnn.extract_embedding(y, sr)


def feature_set_rate(feature_set: str = "gtzan") -> int:
    """Return the sample rate a feature set is defined at (:attr:`FeatureSet.sample_rate`).

    Examples
    --------
    >>> feature_set_rate("gtzan"), feature_set_rate("musicnn")
    (22050, 16000)
    """
    return _feature_set(feature_set).sample_rate


def _table_extractor(name: str):
    def extract(y: np.ndarray, sr: int) -> dict[str, float]:
        # extract_signal is looked up at call time, so a wrapper put on the module's function
        # (a test counting extractions) sees every window of every consumer
        return gtzan.extract_signal(y, sr, feature_set=name)

    return extract


for _name, _columns in gtzan.TABLE_COLUMNS.items():
    register_feature_set(FeatureSet(_name, _columns, _table_extractor(_name)))
# one 3-s patch (2.976 s exactly; stated as 3 s, as the tags' "too short" reason does)
register_feature_set(FeatureSet("musicnn", musicnn.EMBEDDING_COLUMNS, _musicnn_extractor,
                                sample_rate=musicnn.SAMPLE_RATE, min_seconds=3.0))
register_feature_set(combine_feature_sets("gtzan+musicnn", "gtzan", "musicnn"))
