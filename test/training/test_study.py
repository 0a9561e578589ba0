"""The study tables: every row is a valid experiment, and a quick row runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ser_ros.cli.study import REPO_CONFIG
from ser_ros.cli.study import main as study_main
from ser_ros.core.features import feature_preset
from ser_ros.core.model import ModelConfig, SerNet
from ser_ros.training.run import build_front_end
from ser_ros.training.study import load_study, row_experiment


@pytest.mark.parametrize('quick', [False, True])
def test_every_row_builds_a_model_for_its_features(quick):
    study = load_study(REPO_CONFIG)
    assert set(study.tables) == {'table2', 'table3', 'table4'}
    for table in study.tables.values():
        for row in table.rows:
            experiment = row_experiment(study, table, row, quick)
            front_end = build_front_end(experiment)
            num_features, num_frames = front_end.feature_shape
            config = ModelConfig(num_classes=7, num_features=num_features,
                                 num_frames=num_frames, **experiment.model)
            assert SerNet(config).describe()
            assert experiment.output.run_dir.endswith(row.id + ('-quick' if quick else ''))


def test_table2_rows_leave_out_one_feature_each():
    study = load_study(REPO_CONFIG)
    table = study.tables['table2']
    excluded = [row_experiment(study, table, row, False).features.exclude for row in table.rows]
    assert excluded[0] == ()
    groups = [names[0] for names in excluded[1:]]
    assert sorted(groups) == sorted(feature_preset('iemocap').groups)


def test_quick_row_runs_and_writes_the_table(ravdess_dir, tmp_path):
    corpus = tmp_path / 'ravdess'
    corpus.mkdir()
    for actor in ('Actor_03', 'Actor_04'):
        (corpus / actor).symlink_to(ravdess_dir / actor, target_is_directory=True)
    code = study_main(['table4', '--quick', '--rows', 'blstm', '--quiet',
                       '--runs', str(tmp_path / 'runs'), '--out', str(tmp_path / 'out'),
                       '--set', f'data.root={corpus}',
                       '--set', f'output.cache_dir={tmp_path / "cache"}'])
    assert code == 0
    record = json.loads((tmp_path / 'out' / 'table4.json').read_text())
    assert [row['id'] for row in record['rows']] == ['blstm']
    assert record['rows'][0]['paper_wa'] == 66
    markdown = (tmp_path / 'out' / 'table4.md').read_text()
    assert '| BLSTM | 66 |' in markdown and 'ser_study table4 --quick' in markdown
    assert Path(record['rows'][0]['run_dir'], 'model.pt').exists()


def test_unknown_table_or_row_is_refused(capsys):
    assert study_main(['table9', '--quick']) == 2
    assert 'unknown table' in capsys.readouterr().err
    assert study_main(['table4', '--rows', 'nope']) == 2
    assert 'has no rows' in capsys.readouterr().err
