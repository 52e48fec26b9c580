import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from dishbrain.mea import MEA, MOTOR_LAYOUTS, MEAConfig, MotorLayout


def test_default_grid_is_cl1_layout():
    mea = MEA()
    assert mea.n_electrodes == 64
    assert mea.positions_um.shape == (64, 2)
    # Electrode k at row k // 8, column k % 8, 200 um pitch, y grows downward.
    assert tuple(mea.positions_um[0]) == (0.0, 0.0)
    assert tuple(mea.positions_um[9]) == (200.0, 200.0)
    assert tuple(mea.positions_um[63]) == (1400.0, 1400.0)


def test_sensory_electrodes_ordered_top_to_bottom():
    mea = MEA()
    assert len(mea.sensory) == 8
    assert len(set(mea.sensory)) == 8
    ys = mea.positions_um[list(mea.sensory), 1]
    assert np.all(np.diff(ys) > 0), "sensory electrode k must lie below electrode k-1"
    xs = mea.positions_um[list(mea.sensory), 0]
    assert set(xs) == {600.0, 800.0}, "sensory electrodes sit in the two central columns"


def test_motor_layouts_are_data_and_disjoint_from_sensory():
    mea = MEA()
    assert len(mea.layout_names) >= 3
    assert set(mea.layout_names) == set(MOTOR_LAYOUTS)
    for name in mea.layout_names:
        layout = mea.motor_layout(name)
        assert isinstance(layout, MotorLayout)
        assert len(layout.up) == 2 and len(layout.down) == 2
        up, down = set(layout.up_electrodes), set(layout.down_electrodes)
        assert up and down and not (up & down)
        assert not (up | down) & set(mea.sensory)
    a, b = mea.motor_layout("dishbrain"), mea.motor_layout("dishbrain_swapped")
    assert a.up == b.down and a.down == b.up
    with pytest.raises(KeyError, match="unknown motor layout"):
        mea.motor_layout("nope")


def test_custom_layouts_are_accepted_and_checked():
    mea = MEA(layouts={"lr": {"up": ("top_left",), "down": ("top_right",)}})
    assert mea.layout_names == ("lr",)
    with pytest.raises(ValueError, match="motor layout 'bad'"):
        MEA(layouts={"bad": {"up": ("middle",), "down": ("top_left",)}})


def test_layouts_are_frozen():
    layout = MEA().motor_layout("dishbrain")
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.up = ()  # type: ignore[misc]


@pytest.mark.parametrize("field,value,allowed", [
    ("rows", 2, r"\[4, 64\]"),
    ("cols", 8.5, r"\[4, 64\]"),
    ("pitch_um", -1.0, r"\[10.0, 5000.0\]"),
    ("stim_radius_um", float("nan"), "stim_radius_um"),
    ("record_radius_um", 0.0, "record_radius_um"),
    ("n_sensory", 100, "n_sensory"),
    ("motor_gap_cols", 3, r"\[0, 2\]"),
])
def test_config_validation_names_field_and_range(field, value, allowed):
    with pytest.raises(ValueError, match=f"MEAConfig.{field}") as info:
        MEAConfig(**{field: value})
    assert info.match(allowed)


def test_motor_gap_keeps_the_motor_regions_out_of_the_stimulations_reach():
    mea = MEA(MEAConfig(motor_gap_cols=1))
    cols = {name: {e % 8 for e in region} for name, region in mea.regions.items()}
    assert cols["top_left"] == cols["bottom_left"] == {0, 1}
    assert cols["top_right"] == cols["bottom_right"] == {6, 7}
    motor = [e for region in mea.regions.values() for e in region]
    sensory = mea.positions_um[list(mea.sensory)]
    d = np.hypot(*(mea.positions_um[motor][:, None, :] - sensory[None]).T)
    assert d.min() >= 400.0 - 1e-9
    # A neuron recorded by a motor electrode is beyond every sensory electrode's stimulation.
    assert d.min() - mea.config.record_radius_um > mea.config.stim_radius_um


def test_coupling_matrices_follow_distance():
    mea = MEA()
    e = 27  # row 3, col 3
    x, y = mea.positions_um[e]
    pos = np.array([[x, y], [x + 50, y], [x + 100, y], [x + 240, y], [x + 600, y + 600]])
    S = mea.stimulation_matrix(pos)
    R = mea.recording_matrix(pos)
    assert sp.issparse(S) and S.shape == (64, 5)
    assert sp.issparse(R) and R.shape == (64, 5)
    row = S.getrow(e).toarray().ravel()
    assert row[0] == pytest.approx(1.0)
    assert row[1] == pytest.approx(0.5)          # stim_half_distance_um = 50
    assert row[1] > row[2] > row[3] > 0          # falls off with distance
    assert row[4] == 0                           # beyond stim_radius_um
    rec = R.getrow(e).toarray().ravel()
    assert rec.tolist() == [1, 1, 1, 0, 0]       # record_radius_um = 100
    assert R.dtype == np.int64


def test_neurons_scattered_over_the_dish_around_the_grid():
    mea = MEA()
    pos = mea.place_neurons(5000, np.random.default_rng(0))
    x0, x1, y0, y1 = mea.dish_bounds_um
    assert pos.shape == (5000, 2)
    assert x0 < 0 < 1400 < x1 and y0 < 0 < 1400 < y1
    assert pos[:, 0].min() >= x0 and pos[:, 0].max() <= x1
    # Every electrode records somebody at this density.
    assert (mea.recording_matrix(pos).sum(axis=1) > 0).all()
