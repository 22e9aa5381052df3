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

Each set is a :class:`FeatureSet` (name, columns, ``extract(signal, sr)``, sample rate, shortest
signal) in a registry: :func:`feature_set` returns one by name (an unknown name is refused with
the choices), and :func:`register_feature_set` adds one, which every consumer then offers (a
learned set decoded at 16 kHz needs nothing else).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from helpers.constants import MIN_FEATURE_SECONDS as MIN_SECONDS
from helpers.constants import SAMPLE_RATE
from helpers.errors import InputError
from helpers.features import gtzan


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
    ('extended', 'gtzan')
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
    helpers.errors.InputError: fancy: unknown feature set; choose one of extended, gtzan
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



def _table_extractor(name: str):
    def extract(y: np.ndarray, sr: int) -> dict[str, float]:
        # extract_signal is looked up at call time, so a wrapper put on the module's function
        # (a test counting extractions) sees every window of every consumer
        return gtzan.extract_signal(y, sr, feature_set=name)

    return extract


for _name, _columns in gtzan.TABLE_COLUMNS.items():
    register_feature_set(FeatureSet(_name, _columns, _table_extractor(_name)))
