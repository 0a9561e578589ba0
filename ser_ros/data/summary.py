"""What a loaded corpus holds: counts per class, speaker, gender and fold, durations, formats.

Durations and formats come from the file headers (:func:`soundfile.info`), so a summary of
the whole RAVDESS takes well under a second: nothing is decoded. Byte-identical files (such
as the two actor 07 files of RAVDESS) are found by hashing only files of equal size; a split
must keep each such group on one side.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import soundfile

from ser_ros.data.corpus import GENDERS, Corpus

HASH_CHUNK_BYTES = 1 << 20
MAX_LISTED = 5
UNKNOWN = '?'


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of one audio file."""

    duration_s: float
    sample_rate: int
    channels: int
    format: str


def audio_info(paths: Sequence[str | PathLike[str]]) -> list[AudioInfo]:
    """Header facts of every file, in order; ValueError naming the files that cannot be read."""
    infos: list[AudioInfo] = []
    unreadable: list[str] = []
    for path in paths:
        try:
            info = soundfile.info(str(path))
        except (RuntimeError, OSError) as error:  # soundfile.LibsndfileError is a RuntimeError
            unreadable.append(f'{path} ({error})')
            continue
        infos.append(AudioInfo(duration_s=float(info.frames) / info.samplerate,
                               sample_rate=int(info.samplerate), channels=int(info.channels),
                               format=str(info.format)))
    if unreadable:
        more = (f' (and {len(unreadable) - MAX_LISTED} more)'
                if len(unreadable) > MAX_LISTED else '')
        raise ValueError(f'{len(unreadable)} audio files cannot be read: '
                         f'{"; ".join(unreadable[:MAX_LISTED])}{more}')
    return infos


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b''):
            digest.update(chunk)
    return digest.hexdigest()


def identical_files(paths: Iterable[str | PathLike[str]]) -> list[list[Path]]:
    """Find the groups (two or more files each, sorted) of byte-identical files among ``paths``."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for path in map(Path, paths):
        by_size[path.stat().st_size].append(path)
    groups = []
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        by_hash: dict[str, list[Path]] = defaultdict(list)
        for path in same_size:
            by_hash[_sha256(path)].append(path)
        groups.extend(sorted(group) for group in by_hash.values() if len(group) > 1)
    return sorted(groups)


@dataclass(frozen=True)
class DurationStats:
    """Duration statistics of a set of files, in seconds."""

    count: int
    total_s: float
    mean_s: float
    min_s: float
    median_s: float
    max_s: float

    @classmethod
    def of(cls, durations: Sequence[float]) -> DurationStats:
        """Statistics of ``durations`` (all zero for an empty set)."""
        if not durations:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return cls(count=len(durations), total_s=float(sum(durations)),
                   mean_s=float(statistics.fmean(durations)), min_s=float(min(durations)),
                   median_s=float(statistics.median(durations)), max_s=float(max(durations)))


@dataclass(frozen=True)
class SpeakerSummary:
    """One speaker's utterance counts (per class, in label order)."""

    speaker: str
    gender: str | None
    unit: str
    count: int
    classes: dict[str, int]


@dataclass(frozen=True)
class CorpusSummary:
    """Everything :func:`summarize` found, as plain data (see :meth:`to_dict`)."""

    corpus: str
    root: str
    labels: tuple[str, ...]
    fold_unit: str
    count: int
    classes: dict[str, int]
    class_durations: dict[str, DurationStats]
    class_sources: dict[str, dict[str, int]]
    genders: dict[str, int]
    units: dict[str, int]
    speakers: tuple[SpeakerSummary, ...]
    durations: DurationStats
    sample_rates: dict[int, int]
    channels: dict[int, int]
    formats: dict[str, int]
    identical: tuple[tuple[str, ...], ...] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the counts, durations and formats, keyed by name."""
        return {
            'corpus': self.corpus,
            'root': self.root,
            'n': self.count,
            'labels': list(self.labels),
            'fold_unit': self.fold_unit,
            'classes': dict(self.classes),
            'class_mean_duration_s': {label: stats.mean_s
                                      for label, stats in self.class_durations.items()},
            'class_sources': {label: dict(sources)
                              for label, sources in self.class_sources.items()},
            'genders': dict(self.genders),
            'units': dict(self.units),
            'speakers': {item.speaker: {'gender': item.gender, self.fold_unit: item.unit,
                                        'n': item.count, 'classes': dict(item.classes)}
                         for item in self.speakers},
            'duration_s': {'total': self.durations.total_s, 'mean': self.durations.mean_s,
                           'min': self.durations.min_s, 'median': self.durations.median_s,
                           'max': self.durations.max_s},
            'sample_rates': {str(rate): count for rate, count in self.sample_rates.items()},
            'channels': {str(number): count for number, count in self.channels.items()},
            'formats': dict(self.formats),
            'identical_files': (None if self.identical is None
                                else [list(group) for group in self.identical]),
        }

    def format_text(self) -> str:
        """Readable report: overview, class table, speaker table, durations and formats."""
        folds = '' if self.fold_unit == 'speaker' else f'{len(self.units)} {self.fold_unit}s, '
        lines = [f'{self.corpus}: {self.count} utterances, {len(self.speakers)} speakers, '
                 f'{folds}{len(self.labels)} classes', f'root: {self.root}', '']
        merged = any(set(sources) != {label} for label, sources in self.class_sources.items()
                     if sources)
        rows = [[label, str(count), _percent(count, self.count),
                 f'{self.class_durations[label].mean_s:.2f}']
                + ([' + '.join(f'{source} {number}' for source, number
                               in self.class_sources[label].items())] if merged else [])
                for label, count in self.classes.items()]
        rows.append(['total', str(self.count), _percent(self.count, self.count),
                     f'{self.durations.mean_s:.2f}'] + ([''] if merged else []))
        lines += _table(['class', 'n', '%', 'mean s'] + (['from corpus labels'] if merged else []),
                        rows, left=(0, 4))
        lines.append('')
        headers = ['speaker', 'gender']
        if self.fold_unit != 'speaker':
            headers.append(self.fold_unit)
        headers += ['n', *self.labels]
        rows = []
        for item in self.speakers:
            row = [item.speaker, item.gender or UNKNOWN]
            if self.fold_unit != 'speaker':
                row.append(item.unit)
            rows.append(row + [str(item.count)] + [str(item.classes[label])
                                                   for label in self.labels])
        lines += _table(headers, rows)
        lines.append('')
        genders = ', '.join(f'{gender} {count}' for gender, count in self.genders.items())
        lines.append(f'genders: {genders}')
        if self.fold_unit != 'speaker':
            units = ', '.join(f'{unit}: {count}' for unit, count in self.units.items())
            lines.append(f'{self.fold_unit}s: {units}')
        stats = self.durations
        lines.append(f'duration: total {stats.total_s / 60:.1f} min, mean {stats.mean_s:.2f} s, '
                     f'min {stats.min_s:.2f} s, median {stats.median_s:.2f} s, '
                     f'max {stats.max_s:.2f} s')
        lines.append('sample rates: ' + ', '.join(f'{rate} Hz x {count}'
                                                  for rate, count in self.sample_rates.items()))
        lines.append('channels: ' + ', '.join(f'{number} x {count}'
                                              for number, count in self.channels.items()))
        lines.append('formats: ' + ', '.join(f'{name} x {count}'
                                             for name, count in self.formats.items()))
        if self.identical is None:
            lines.append('identical files: not checked')
        elif not self.identical:
            lines.append('identical files: none')
        else:
            groups = 'group' if len(self.identical) == 1 else 'groups'
            lines.append(f'identical files: {len(self.identical)} {groups} '
                         '(keep each group on one side of a split)')
            lines += ['  ' + ' = '.join(group) for group in self.identical]
        return '\n'.join(lines)


def _percent(count: int, total: int) -> str:
    return f'{100.0 * count / total:.1f}' if total else '0.0'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]],
           left: Sequence[int] = (0,)) -> list[str]:
    """Text table: columns ``left`` left-aligned, the others (numbers) right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return '  '.join(str(cell).ljust(width) if i in left else str(cell).rjust(width)
                         for i, (cell, width) in pairs).rstrip()

    return [line(headers), line(['-' * width for width in widths]), *map(line, rows)]


def _relative(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _natural(text: str) -> tuple[int, int, str]:
    """Sort key putting numbers in numeric order before other text."""
    return (0, int(text), '') if text.isdigit() else (1, 0, text)


def summarize(corpus: Corpus, check_identical: bool = True) -> CorpusSummary:
    """Summarize ``corpus`` from its labels and file headers (and file hashes, if asked)."""
    infos = audio_info(corpus.paths)
    durations = [info.duration_s for info in infos]
    by_class: dict[str, list[float]] = {label: [] for label in corpus.labels}
    for item, duration in zip(corpus, durations, strict=True):
        by_class[item.label].append(duration)
    sources: dict[str, Counter[str]] = {label: Counter() for label in corpus.labels}
    for item in corpus:
        sources[item.label][item.emotion or item.label] += 1
    gender_counts = Counter(item.gender or UNKNOWN for item in corpus)
    genders = {gender: gender_counts[gender] for gender in (*GENDERS, UNKNOWN)
               if gender_counts[gender]}
    units = Counter(corpus.units())
    speakers = []
    for speaker in corpus.speakers:
        indices = [i for i, item in enumerate(corpus) if item.speaker == speaker]
        first = corpus[indices[0]]
        speaker_genders = {corpus[i].gender for i in indices}
        speakers.append(SpeakerSummary(
            speaker=speaker, gender=first.gender if len(speaker_genders) == 1 else None,
            unit=','.join(sorted({str(getattr(corpus[i], corpus.fold_unit)) for i in indices})),
            count=len(indices), classes=corpus.class_counts(indices)))
    identical = None
    if check_identical:
        identical = tuple(tuple(_relative(corpus.root, path) for path in group)
                          for group in identical_files(corpus.paths))
    return CorpusSummary(
        corpus=corpus.name, root=str(corpus.root), labels=corpus.labels,
        fold_unit=corpus.fold_unit, count=len(corpus), classes=corpus.class_counts(),
        class_durations={label: DurationStats.of(values) for label, values in by_class.items()},
        class_sources={label: dict(counts.most_common()) for label, counts in sources.items()},
        genders=genders, units=dict(sorted(units.items(), key=lambda pair: _natural(pair[0]))),
        speakers=tuple(speakers), durations=DurationStats.of(durations),
        sample_rates=dict(sorted(Counter(info.sample_rate for info in infos).items())),
        channels=dict(sorted(Counter(info.channels for info in infos).items())),
        formats=dict(sorted(Counter(info.format for info in infos).items())),
        identical=identical)
