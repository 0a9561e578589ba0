"""RAVDESS speech from a folder in the official layout, with labels read from the file names.

Layout: ``ROOT/Actor_XX/MM-VC-EE-II-SS-RR-AA.wav`` (or ``.flac``, any sample rate). Fields:
modality (03 = audio only), vocal channel (01 = speech, 02 = song), emotion (01..08, see
:data:`~ser_ros.data.labels.RAVDESS_EMOTION_CODES`), intensity (01 normal, 02 strong),
statement (01, 02), repetition (01, 02), actor (01..24; odd = male, even = female).

Song files and audio-visual / video-only names are skipped quietly (the official song archive
and the speech archive share the layout). An audio file whose name does not follow the
pattern, or whose actor differs from its ``Actor_XX`` folder, or a second file of the same
utterance (e.g. a converted ``.wav`` beside its ``.flac``), is an error by default (a silently
smaller or doubled corpus would change every result); ``strict=False`` skips it with a warning.
Hidden files (``._*`` written by macOS archivers) are ignored.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from ser_ros.data.corpus import Corpus, Utterance
from ser_ros.data.labels import DEFAULT_CLASSES, RAVDESS_EMOTION_CODES, label_set, ravdess_label

CORPUS_NAME = 'ravdess'
LAYOUT = 'ROOT/Actor_XX/MM-VC-EE-II-SS-RR-AA.wav|flac (e.g. Actor_01/03-01-05-02-01-01-01.wav)'
AUDIO_EXTENSIONS = ('.wav', '.flac')
ACTOR_FOLDER = re.compile(r'^Actor_(\d{2})$')
NAME_PATTERN = re.compile(r'^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$')
MODALITIES = {'01': 'audio-video', '02': 'video-only', '03': 'audio-only'}
VOCAL_CHANNELS = {'01': 'speech', '02': 'song'}
INTENSITIES = {'01': 'normal', '02': 'strong'}
STATEMENTS = {'01': 1, '02': 2}
REPETITIONS = {'01': 1, '02': 2}
AUDIO_ONLY = 'audio-only'
SPEECH = 'speech'
MAX_ACTOR = 24
MAX_LISTED = 5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name, decoded."""

    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: int
    repetition: int
    actor: int

    @property
    def gender(self) -> str:
        """'M' for odd actor numbers, 'F' for even ones."""
        return 'M' if self.actor % 2 else 'F'

    @property
    def speaker(self) -> str:
        """Speaker id, the actor's folder name ('Actor_07')."""
        return f'Actor_{self.actor:02d}'


def _decode(field_name: str, code: str, table: dict[str, object], name: str) -> object:
    if code not in table:
        raise ValueError(f'RAVDESS file name {name!r}: {field_name} code {code!r} is not one of '
                         f'{sorted(table)}')
    return table[code]


def parse_ravdess_name(name: str) -> RavdessName:
    """Decode a RAVDESS file name (with or without folder and extension), or raise ValueError."""
    stem = Path(name).name
    if Path(stem).suffix.lower() in AUDIO_EXTENSIONS:
        stem = Path(stem).stem
    match = NAME_PATTERN.match(stem)
    if match is None:
        raise ValueError(f'RAVDESS file name {name!r} does not match MM-VC-EE-II-SS-RR-AA '
                         '(seven two-digit fields separated by "-")')
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    actor_number = int(actor)
    if not 1 <= actor_number <= MAX_ACTOR:
        raise ValueError(f'RAVDESS file name {name!r}: actor {actor} is not within 01..{MAX_ACTOR}')
    return RavdessName(
        modality=str(_decode('modality', modality, MODALITIES, name)),
        vocal_channel=str(_decode('vocal channel', channel, VOCAL_CHANNELS, name)),
        emotion=str(_decode('emotion', emotion, dict(RAVDESS_EMOTION_CODES), name)),
        intensity=str(_decode('intensity', intensity, INTENSITIES, name)),
        statement=int(_decode('statement', statement, STATEMENTS, name)),
        repetition=int(_decode('repetition', repetition, REPETITIONS, name)),
        actor=actor_number,
    )


def _actor_folders(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        raise ValueError(f'RAVDESS folder {root} does not exist or is not a folder; '
                         f'expected layout {LAYOUT}')
    folders = []
    for entry in sorted(root.iterdir()):
        match = ACTOR_FOLDER.match(entry.name)
        if match and entry.is_dir():
            folders.append((int(match.group(1)), entry))
    if not folders:
        raise ValueError(f'RAVDESS folder {root} has no Actor_XX subfolders; '
                         f'expected layout {LAYOUT}')
    return folders


def _parse_in_folder(path: Path, folder_actor: int) -> RavdessName:
    parsed = parse_ravdess_name(path.name)
    if parsed.actor != folder_actor:
        raise ValueError(f'RAVDESS file {path.name!r} names actor {parsed.actor:02d} but lies in '
                         f'{path.parent.name}')
    return parsed


def load_ravdess(root: str | PathLike[str], classes: int = DEFAULT_CLASSES[CORPUS_NAME],
                 strict: bool = True) -> Corpus:
    """Every audio-only speech file under ``root``, labelled with 7 (calm -> neutral) or 8 classes.

    Utterances are sorted by path. ``strict=False`` skips malformed names, files in the wrong
    actor folder and repeated utterances with a warning instead of raising ValueError.
    """
    root = Path(root)
    labels = label_set(CORPUS_NAME, classes)
    utterances: list[Utterance] = []
    malformed: list[str] = []
    seen: dict[str, Path] = {}
    skipped = 0
    for actor, folder in _actor_folders(root):
        for path in sorted(folder.iterdir()):
            if path.name.startswith('.') or path.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            try:
                parsed = _parse_in_folder(path, actor)
            except ValueError as error:
                malformed.append(str(error))
                continue
            if path.stem in seen:
                malformed.append(f'RAVDESS file {path.name!r} in {folder.name} repeats utterance '
                                 f'{path.stem} of {seen[path.stem].name!r}')
                continue
            seen[path.stem] = path
            if parsed.modality != AUDIO_ONLY or parsed.vocal_channel != SPEECH:
                skipped += 1
                continue
            utterances.append(Utterance(
                path=path, label=ravdess_label(parsed.emotion, classes), speaker=parsed.speaker,
                gender=parsed.gender, emotion=parsed.emotion, intensity=parsed.intensity,
                statement=parsed.statement, repetition=parsed.repetition))
    if malformed:
        listed = '; '.join(malformed[:MAX_LISTED])
        more = f' (and {len(malformed) - MAX_LISTED} more)' if len(malformed) > MAX_LISTED else ''
        message = (f'{len(malformed)} audio files under {root} have malformed, misplaced or '
                   f'repeated RAVDESS names: {listed}{more}')
        if strict:
            raise ValueError(message + '; pass strict=False to skip them')
        warnings.warn(message + '; they are skipped', stacklevel=2)
    if skipped:
        logger.info('RAVDESS: skipped %d song or non-audio-only files under %s', skipped, root)
    if not utterances:
        raise ValueError(f'RAVDESS folder {root} holds no audio-only speech files '
                         f'(03-01-*.wav|flac); expected layout {LAYOUT}')
    return Corpus(name=CORPUS_NAME, root=root, labels=labels, utterances=tuple(utterances),
                  fold_unit='speaker')
