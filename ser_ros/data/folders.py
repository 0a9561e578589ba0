"""Labelled speech from a folder per emotion: any corpus, or the ward's own recordings.

Layout: ``ROOT/<emotion>/*.wav|flac``, or ``ROOT/<emotion>/<speaker>/*.wav|flac`` where the
speaker is known (then speaker-independent protocols can hold speakers out). Emotion folder
names are the model's labels (``angry``, ``happy``, ...) or a common spelling of one
(``anger``, ``happiness``, ``fear``, ``surprise``, ``pleasant_surprise``, ...; see
:data:`FOLDER_ALIASES`); where the label set lacks them, calm becomes neutral and excited
becomes happy, as in the corpora. Other CREMA-D, TESS, SAVEE or EmoDB-style folders sorted this
way evaluate with ``ser_evaluate --corpus folders --data ROOT``.

A folder whose name is no label of the set, or a file nested deeper than a speaker folder, is
an error: a silently smaller corpus would change every result. Hidden files and files that
are not audio are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from types import MappingProxyType

from ser_ros.data.corpus import Corpus, Utterance
from ser_ros.data.labels import DEFAULT_CLASSES, IEMOCAP_CODES, RAVDESS_MERGE_7, label_set

CORPUS_NAME = 'folders'
LAYOUT = 'ROOT/<emotion>/[<speaker>/]*.wav|flac (e.g. ROOT/angry/spk03/take1.wav)'
AUDIO_EXTENSIONS = ('.wav', '.flac')
UNKNOWN_SPEAKER = 'unknown'
# Other spellings of the labels, as other corpora and people name their folders.
FOLDER_ALIASES: Mapping[str, str] = MappingProxyType({
    'neu': 'neutral',
    'anger': 'angry',
    'ang': 'angry',
    'happiness': 'happy',
    'hap': 'happy',
    'joy': 'happy',
    'sadness': 'sad',
    'fear': 'fearful',
    'fea': 'fearful',
    'disgusted': 'disgust',
    'dis': 'disgust',
    'surprise': 'surprised',
    'sur': 'surprised',
    'pleasant_surprise': 'surprised',
    'ps': 'surprised',
    'exc': 'excited',
})


# Emotions that become another class where the label set lacks them, as in the corpora.
FOLDER_MERGES: Mapping[str, str] = MappingProxyType({**RAVDESS_MERGE_7,
                                                     'excited': IEMOCAP_CODES['exc']})


def folder_label(name: str, labels: tuple[str, ...]) -> str | None:
    """Class of an emotion folder ``name`` in ``labels`` (None: it names no class of them)."""
    emotion = name.strip().lower().replace(' ', '_').replace('-', '_')
    emotion = FOLDER_ALIASES.get(emotion, emotion)
    if emotion not in labels:
        emotion = FOLDER_MERGES.get(emotion, emotion)
    return emotion if emotion in labels else None


def _audio_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob('*')
                  if path.is_file() and not any(part.startswith('.') for part in
                                                path.relative_to(folder).parts)
                  and path.suffix.lower() in AUDIO_EXTENSIONS)


def load_folders(root: str | PathLike[str], classes: int = DEFAULT_CLASSES[CORPUS_NAME]
                 ) -> Corpus:
    """Load ``ROOT/<emotion>/[<speaker>/]`` audio files with ``classes`` classes (7, 8 or 4)."""
    root = Path(root)
    labels = label_set(CORPUS_NAME, classes)
    folders = sorted(path for path in root.iterdir()
                     if path.is_dir() and not path.name.startswith('.'))
    unknown = [folder.name for folder in folders if folder_label(folder.name, labels) is None]
    if unknown:
        raise ValueError(f'{root}: folders {unknown} name no emotion of the {classes}-class '
                         f'set {list(labels)} (or its spellings: '
                         f'{", ".join(sorted(FOLDER_ALIASES))}); rename or move them. '
                         f'Layout: {LAYOUT}')
    utterances = []
    for folder in folders:
        label = folder_label(folder.name, labels)
        for path in _audio_files(folder):
            inner = path.relative_to(folder).parts
            if len(inner) > 2:
                raise ValueError(f'{path}: nested deeper than <emotion>/<speaker>/; '
                                 f'layout: {LAYOUT}')
            utterances.append(Utterance(path=path, label=label, emotion=folder.name,
                                        speaker=inner[0] if len(inner) == 2 else UNKNOWN_SPEAKER))
    if not utterances:
        raise ValueError(f'{root}: no audio files ({", ".join(AUDIO_EXTENSIONS)}) in emotion '
                         f'folders; layout: {LAYOUT}')
    return Corpus(CORPUS_NAME, root, labels, sorted(utterances, key=lambda item: item.path))
