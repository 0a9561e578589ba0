"""IEMOCAP from its official release layout, with the four usual classes.

Layout (release 'IEMOCAP_full_release'): for each session N,

- audio: ``ROOT/SessionN/sentences/wav/<dialog>/<utterance>.wav`` (16 kHz, one file per turn);
- labels: ``ROOT/SessionN/dialog/EmoEvaluation/<dialog>.txt``, where each turn has a summary
  line ``[start - end]<TAB><utterance>  <TAB><code><TAB>[V, A, D]`` followed by per-evaluator
  lines (``C-E1:``, ``A-F2:`` ...), which are ignored.

Codes neu, ang, hap, sad are kept, exc becomes happy (:data:`~ser_ros.data.labels.IEMOCAP_CODES`);
every other code (fru, sur, fea, dis, oth, xxx) is skipped. The speaker is the session plus the
gender of the actor who speaks the turn (the F/M before the turn index at the end of the
utterance id, e.g. ``Ses01F_impro01_M013`` -> ``Ses01_M``); sessions are the folds of
speaker-independent protocols (leave one session out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from ser_ros.data.corpus import Corpus, Utterance
from ser_ros.data.labels import DEFAULT_CLASSES, IEMOCAP_CODES, label_set

CORPUS_NAME = 'iemocap'
LAYOUT = ('ROOT/SessionN/sentences/wav/<dialog>/<utterance>.wav with labels in '
          'ROOT/SessionN/dialog/EmoEvaluation/<dialog>.txt')
SESSION_FOLDER = re.compile(r'^Session(\d+)$')
WAV_FOLDER = ('sentences', 'wav')
EVALUATION_FOLDER = ('dialog', 'EmoEvaluation')
WAV_EXTENSION = '.wav'
LABEL_EXTENSION = '.txt'
# A turn's summary line; evaluator lines (C-E1:, A-F2:, ...) and the '%' header never match.
SUMMARY_START = '['
SUMMARY_LINE = re.compile(
    r'^\[\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*\]\s+(\S+)\s+(\S+)\s+\[[^\]]*\]\s*$')
UTTERANCE_ID = re.compile(r'^Ses(\d+)[FM]_\S+_([FM])\d+$')


@dataclass(frozen=True)
class EvaluationEntry:
    """One turn's summary line of an EmoEvaluation file."""

    start_s: float
    end_s: float
    utterance: str
    code: str


def parse_emo_evaluation(path: str | PathLike[str]) -> list[EvaluationEntry]:
    """Summary lines of one EmoEvaluation file, in file order; ValueError on a malformed one."""
    path = Path(path)
    entries = []
    for number, line in enumerate(path.read_text(encoding='utf-8', errors='replace').splitlines(),
                                  start=1):
        if not line.startswith(SUMMARY_START):
            continue
        match = SUMMARY_LINE.match(line)
        if match is None:
            raise ValueError(f'{path}:{number}: malformed EmoEvaluation line {line!r}; expected '
                             '"[start - end]<TAB>utterance<TAB>code<TAB>[V, A, D]"')
        start, end, utterance, code = match.groups()
        entries.append(EvaluationEntry(float(start), float(end), utterance, code))
    return entries


def utterance_speaker(utterance: str) -> tuple[int, str]:
    """Session number and speaking actor's gender of an utterance id, e.g. (1, 'M')."""
    match = UTTERANCE_ID.match(utterance)
    if match is None:
        raise ValueError(f'IEMOCAP utterance id {utterance!r} does not look like '
                         'SesNNX_<dialog>_<F|M><index> (e.g. Ses01F_impro01_F000)')
    return int(match.group(1)), match.group(2)


def _sessions(root: Path, sessions: tuple[int, ...] | None) -> list[tuple[int, Path]]:
    if not root.is_dir():
        raise ValueError(f'IEMOCAP folder {root} does not exist or is not a folder; '
                         f'expected layout {LAYOUT}')
    found = {}
    for entry in sorted(root.iterdir()):
        match = SESSION_FOLDER.match(entry.name)
        if match and entry.is_dir():
            found[int(match.group(1))] = entry
    if not found:
        raise ValueError(f'IEMOCAP folder {root} has no SessionN subfolders; '
                         f'expected layout {LAYOUT}')
    if sessions is None:
        return sorted(found.items())
    missing = sorted(set(sessions) - set(found))
    if missing:
        raise ValueError(f'IEMOCAP sessions {missing} not found under {root} '
                         f'(found {sorted(found)})')
    return [(number, found[number]) for number in sorted(set(sessions))]


def _session_utterances(number: int, folder: Path) -> list[Utterance]:
    evaluation = folder.joinpath(*EVALUATION_FOLDER)
    files = sorted(path for path in evaluation.glob(f'*{LABEL_EXTENSION}')
                   if not path.name.startswith('.')) if evaluation.is_dir() else []
    if not files:
        raise ValueError(f'IEMOCAP session folder {folder} has no label files in {evaluation}; '
                         f'expected layout {LAYOUT}')
    utterances, missing = [], []
    for label_file in files:
        dialog = label_file.stem
        for entry in parse_emo_evaluation(label_file):
            label = IEMOCAP_CODES.get(entry.code)
            if label is None:
                continue
            session, gender = utterance_speaker(entry.utterance)
            if session != number:
                raise ValueError(f'{label_file}: utterance {entry.utterance} belongs to session '
                                 f'{session}, not {number}')
            wav = folder.joinpath(*WAV_FOLDER, dialog, entry.utterance + WAV_EXTENSION)
            if not wav.is_file():
                missing.append(wav)
                continue
            utterances.append(Utterance(
                path=wav, label=label, speaker=f'Ses{session:02d}_{gender}', gender=gender,
                session=session, emotion=entry.code, start_s=entry.start_s, end_s=entry.end_s))
    if missing:
        raise ValueError(f'{len(missing)} labelled IEMOCAP utterances of {folder.name} have no '
                         f'audio file, e.g. {missing[0]}; expected layout {LAYOUT}')
    return utterances


def load_iemocap(root: str | PathLike[str], classes: int = DEFAULT_CLASSES[CORPUS_NAME],
                 sessions: tuple[int, ...] | None = None) -> Corpus:
    """Load the neu/ang/hap+exc/sad turns of ``sessions`` (default: all found), sorted by path."""
    root = Path(root)
    labels = label_set(CORPUS_NAME, classes)
    utterances: list[Utterance] = []
    for number, folder in _sessions(root, sessions):
        utterances.extend(_session_utterances(number, folder))
    if not utterances:
        raise ValueError(f'IEMOCAP folder {root} holds no turns labelled '
                         f'{sorted(IEMOCAP_CODES)}; expected layout {LAYOUT}')
    utterances.sort(key=lambda item: item.path)
    return Corpus(name=CORPUS_NAME, root=root, labels=labels, utterances=tuple(utterances),
                  fold_unit='session')
