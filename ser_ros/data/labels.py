"""Emotion label sets and the corpus codes that map onto them: the one definition of label order.

A model's output index ``i`` means ``labels[i]`` of the tuple it was trained with, and
checkpoints store that tuple, so these orders must never change once models are shipped.

- RAVDESS (file name field 3): eight emotions. The paper merges calm into neutral (calm and
  neutral sound alike and neutral has half as many files), giving seven classes.
- IEMOCAP (EmoEvaluation label codes): the usual four classes, with excited merged into happy
  (as the paper does); every other code (frustration, surprise, ``xxx`` = no agreement, ...)
  is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# RAVDESS emotion codes, in file-code order (01..08).
RAVDESS_EMOTION_CODES: Mapping[str, str] = MappingProxyType({
    '01': 'neutral',
    '02': 'calm',
    '03': 'happy',
    '04': 'sad',
    '05': 'angry',
    '06': 'fearful',
    '07': 'disgust',
    '08': 'surprised',
})
RAVDESS_8: tuple[str, ...] = tuple(RAVDESS_EMOTION_CODES.values())
RAVDESS_MERGE_7: Mapping[str, str] = MappingProxyType({'calm': 'neutral'})
RAVDESS_7: tuple[str, ...] = tuple(label for label in RAVDESS_8 if label not in RAVDESS_MERGE_7)

# IEMOCAP EmoEvaluation codes that are kept, and the class each one becomes.
IEMOCAP_CODES: Mapping[str, str] = MappingProxyType({
    'neu': 'neutral',
    'ang': 'angry',
    'hap': 'happy',
    'exc': 'happy',
    'sad': 'sad',
})
IEMOCAP_4: tuple[str, ...] = ('neutral', 'angry', 'happy', 'sad')

# A folder per emotion (ser_ros.data.folders) takes whichever set the model has.
LABEL_SETS: Mapping[tuple[str, int], tuple[str, ...]] = MappingProxyType({
    ('ravdess', 7): RAVDESS_7,
    ('ravdess', 8): RAVDESS_8,
    ('iemocap', 4): IEMOCAP_4,
    ('folders', 7): RAVDESS_7,
    ('folders', 8): RAVDESS_8,
    ('folders', 4): IEMOCAP_4,
})
DEFAULT_CLASSES: Mapping[str, int] = MappingProxyType({'ravdess': 7, 'iemocap': 4,
                                                       'folders': 7})


def label_set(corpus: str, classes: int | None = None) -> tuple[str, ...]:
    """Ordered labels of ``corpus`` ('ravdess', 'iemocap', 'folders') with ``classes`` classes."""
    if corpus not in DEFAULT_CLASSES:
        raise ValueError(f'unknown corpus {corpus!r}; known corpora are {sorted(DEFAULT_CLASSES)}')
    count = DEFAULT_CLASSES[corpus] if classes is None else classes
    try:
        return LABEL_SETS[(corpus, count)]
    except KeyError:
        options = sorted(number for name, number in LABEL_SETS if name == corpus)
        raise ValueError(f'{corpus} has label sets with {options} classes, not {count!r}') from None


def ravdess_label(emotion: str, classes: int = DEFAULT_CLASSES['ravdess']) -> str:
    """Class of a RAVDESS emotion name ('calm' becomes 'neutral' with 7 classes)."""
    labels = label_set('ravdess', classes)
    label = RAVDESS_MERGE_7.get(emotion, emotion) if classes == len(RAVDESS_7) else emotion
    if label not in labels:
        raise ValueError(f'unknown RAVDESS emotion {emotion!r}; expected one of {RAVDESS_8}')
    return label
