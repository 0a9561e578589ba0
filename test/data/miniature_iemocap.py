"""A miniature IEMOCAP corpus in the exact layout and file formats of the official release.

IEMOCAP is licensed and not available to the tests, so they write a small one:

- ``SessionN/sentences/wav/<dialog>/<utterance>.wav``: one 16 kHz mono 16-bit file per turn,
  a synthetic voiced sound (harmonics of a female- or male-range pitch, with an envelope)
  lasting exactly the turn's ``end - start``;
- ``SessionN/dialog/EmoEvaluation/<dialog>.txt``: the release's label files, a ``%`` header
  line, then per turn a summary line ``[start - end]<TAB>utterance<TAB>code<TAB>[V, A, D]``
  followed by categorical (``C-E1:``) and attribute (``A-E1:``) evaluator lines and a blank
  line;
- what the release has beside them and a loader must ignore: the per-evaluator
  ``EmoEvaluation/Categorical`` and ``Attribute`` subfolders, transcriptions, a macOS
  ``._`` file, ``Documentation/`` and ``README.txt`` at the top.

Every dialog mixes kept codes (neu, ang, hap, exc, sad) with dropped ones (fru, sur, xxx, oth,
fea, dis), both speakers of the session talk in every dialog (so the dialog's F/M letter and
the speaker's differ on half the turns), and session 5 has the release's odd dialog name
``Ses05M_script01_1b``. :class:`Turn` records the truth the tests compare the loader with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

RATE = 16000
HEADER = '% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]'
# What a test expects the loader to keep, written out here rather than taken from the code
# under test.
EXPECTED_LABELS = {'neu': 'neutral', 'ang': 'angry', 'hap': 'happy', 'exc': 'happy',
                   'sad': 'sad'}
CATEGORY_NAMES = {'neu': 'Neutral', 'ang': 'Anger', 'hap': 'Happiness', 'exc': 'Excited',
                  'sad': 'Sadness', 'fru': 'Frustration', 'sur': 'Surprise', 'fea': 'Fear',
                  'dis': 'Disgust', 'oth': 'Other', 'xxx': 'Neutral'}
# (speaker gender, code) of each turn of an improvised and a scripted dialog.
IMPRO_TURNS = (('F', 'neu'), ('M', 'ang'), ('F', 'exc'), ('M', 'fru'), ('F', 'sad'),
               ('M', 'hap'), ('F', 'xxx'), ('M', 'neu'), ('F', 'ang'))
SCRIPT_TURNS = (('M', 'sad'), ('F', 'sur'), ('M', 'exc'), ('F', 'hap'), ('M', 'oth'),
                ('F', 'neu'), ('M', 'fea'), ('F', 'dis'), ('M', 'ang'))
PITCH_HZ = {'F': 210.0, 'M': 115.0}
HARMONICS = 6
DEFAULT_SESSIONS = (1, 2, 5)


@dataclass(frozen=True)
class Turn:
    """One turn written into the miniature corpus, as the release would label it."""

    session: int
    dialog: str
    utterance: str
    code: str
    start_s: float
    end_s: float
    wav: Path

    @property
    def gender(self) -> str:
        """Speaking actor's gender: the letter before the turn index ('..._M003' -> 'M')."""
        return self.utterance.rsplit('_', 1)[1][0]

    @property
    def speaker(self) -> str:
        """Speaker id the loader should give: session and gender, e.g. 'Ses01_M'."""
        return f'Ses{self.session:02d}_{self.gender}'

    @property
    def label(self) -> str | None:
        """Four-class label the loader should give, or None if the turn must be dropped."""
        return EXPECTED_LABELS.get(self.code)


@dataclass(frozen=True)
class Miniature:
    """The written corpus: its root and every turn (kept or not), in file order."""

    root: Path
    turns: tuple[Turn, ...]

    @property
    def kept(self) -> tuple[Turn, ...]:
        """Turns with a four-class label, sorted by audio path (the loader's order)."""
        return tuple(sorted((turn for turn in self.turns if turn.label),
                            key=lambda turn: turn.wav))

    def label_file(self, dialog: str) -> Path:
        """EmoEvaluation file of ``dialog``."""
        session = int(dialog[3:5])
        return self.root / f'Session{session}' / 'dialog' / 'EmoEvaluation' / f'{dialog}.txt'


def voiced_sound(duration_s: float, pitch_hz: float, seed: int, rate: int = RATE) -> np.ndarray:
    """Make a voice-like test sound: decaying harmonics, a pitch glide, noise, an envelope."""
    rng = np.random.default_rng(seed)
    count = int(round(duration_s * rate))
    time = np.arange(count) / rate
    glide = pitch_hz * (1.0 + 0.1 * np.sin(2 * np.pi * 0.7 * time + rng.uniform(0, np.pi)))
    phase = 2 * np.pi * np.cumsum(glide) / rate
    sound = sum(np.sin(k * phase) / k for k in range(1, HARMONICS + 1))
    sound = sound + 0.05 * rng.standard_normal(count)
    envelope = np.sin(np.pi * np.clip(time / max(duration_s, 1e-9), 0, 1)) ** 0.5
    return (0.3 * sound * envelope / np.max(np.abs(sound))).astype(np.float32)


def _dialogs(session: int) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    script = f'Ses{session:02d}M_script01_1' + ('b' if session == 5 else '')
    return [(f'Ses{session:02d}F_impro01', IMPRO_TURNS), (script, SCRIPT_TURNS)]


def _evaluator_lines(code: str, index: int) -> list[str]:
    name = CATEGORY_NAMES[code]
    other = 'Frustration' if code != 'fru' else 'Anger'
    valence, activation, dominance = 1 + index % 5, 1 + (index + 2) % 5, 1 + (index + 1) % 5
    return [f'C-E2:\t{name};\t()',
            f'C-E3:\t{name}; {other};\t()',
            f'C-F1:\t{name};\t(self-evaluation)',
            f'A-E3:\tval {valence}; act {activation}; dom  {dominance};\t()',
            f'A-F1:\tval {valence}; act {activation}; dom  {dominance};\t(calm, a bit tired)']


def write_miniature_iemocap(root: Path, sessions: tuple[int, ...] = DEFAULT_SESSIONS) -> Miniature:
    """Write the miniature corpus of ``sessions`` under ``root``; return what was written."""
    root = Path(root)
    (root / 'Documentation').mkdir(parents=True, exist_ok=True)
    (root / 'Documentation' / 'timeinfo.txt').write_text('session timing notes\n')
    (root / 'README.txt').write_text('IEMOCAP miniature written by the ser_ros tests\n')
    turns: list[Turn] = []
    for session in sessions:
        folder = root / f'Session{session}'
        evaluation = folder / 'dialog' / 'EmoEvaluation'
        for sub in ('Categorical', 'Attribute'):
            (evaluation / sub).mkdir(parents=True, exist_ok=True)
        transcriptions = folder / 'dialog' / 'transcriptions'
        transcriptions.mkdir(parents=True, exist_ok=True)
        for dialog, plan in _dialogs(session):
            wav_folder = folder / 'sentences' / 'wav' / dialog
            wav_folder.mkdir(parents=True, exist_ok=True)
            counters = {'F': 0, 'M': 0}
            lines = [HEADER, '']
            categorical, transcript = [], []
            start = 2.1 + session
            for index, (gender, code) in enumerate(plan):
                utterance = f'{dialog}_{gender}{counters[gender]:03d}'
                counters[gender] += 1
                duration = 0.35 + 0.05 * ((index * 7 + session) % 9)
                end = round(start + duration, 4)
                wav = wav_folder / f'{utterance}.wav'
                seed = session * 1000 + len(turns)
                soundfile.write(wav, voiced_sound(end - start, PITCH_HZ[gender], seed), RATE,
                                subtype='PCM_16')
                valence, activation, dominance = (1.5 + index % 4, 2.0 + index % 3,
                                                  2.5 + index % 2)
                lines.append(f'[{start:.4f} - {end:.4f}]\t{utterance}\t{code}\t'
                             f'[{valence:.4f}, {activation:.4f}, {dominance:.4f}]')
                lines += _evaluator_lines(code, index)
                lines.append('')
                categorical.append(f'{utterance} :{CATEGORY_NAMES[code]}; ()')
                transcript.append(f'{utterance} [{start:08.4f}-{end:08.4f}]: Line {index}.')
                turns.append(Turn(session=session, dialog=dialog, utterance=utterance, code=code,
                                  start_s=round(start, 4), end_s=end, wav=wav))
                start = round(end + 0.8, 4)
            (evaluation / f'{dialog}.txt').write_text('\n'.join(lines) + '\n')
            (evaluation / 'Categorical' / f'{dialog}_e2_cat.txt').write_text(
                '\n'.join(categorical) + '\n')
            (evaluation / 'Attribute' / f'{dialog}_e3_atr.txt').write_text(
                '\n'.join(f'{line.split()[0]} :act 2; val 3; dom 2; ()' for line in categorical)
                + '\n')
            (transcriptions / f'{dialog}.txt').write_text('\n'.join(transcript) + '\n')
        # An AppleDouble file as macOS archivers leave them: binary, named like a label file.
        (evaluation / f'._{_dialogs(session)[0][0]}.txt').write_bytes(b'\x00\x05\x16\x07\xff[')
    return Miniature(root=root, turns=tuple(turns))
