"""EfficientAD networks: parameter counts and grids of A2/A4, and the official key layouts."""

import pytest
import torch
from torch import nn

from anomalyflow.errors import ConfigError
from anomalyflow.nets.autoencoder import Autoencoder, decoder_sizes, pdn_output_size
from anomalyflow.nets.pdn import (
    build_pdn,
    conv_names,
    count_parameters,
    is_sequential_state,
    pdn_medium,
    pdn_small,
    sequential_to_named,
)


def millions(module: nn.Module, digits: int) -> float:
    return round(count_parameters(module) / 1e6, digits)


def test_parameter_counts_match_the_paper():
    assert millions(pdn_small(384), 2) == 2.69
    assert millions(pdn_medium(384), 2) == 8.03
    assert millions(pdn_small(768), 2) == 4.27
    assert millions(pdn_medium(768), 1) == 11.6
    assert millions(Autoencoder(384, 256), 2) == 1.10
    # Padding holds no weights, and neither does dropout: counts are the same either way.
    assert count_parameters(pdn_small(padding=True)) == count_parameters(pdn_small())
    assert count_parameters(Autoencoder(dropout=0.0)) == count_parameters(Autoencoder())


def shape_of(module: nn.Module, side: int, batch: int = 1) -> tuple[int, ...]:
    """Output shape on the meta device: the real layers' shape arithmetic without the arithmetic cost."""
    return tuple(module.to("meta")(torch.empty(batch, 3, side, side, device="meta")).shape)


@pytest.mark.parametrize("builder", [pdn_small, pdn_medium])
def test_pdn_grid_with_and_without_padding(builder):
    assert shape_of(builder(), 256) == (1, 384, 56, 56)
    assert shape_of(builder(padding=True), 256) == (1, 384, 64, 64)
    assert shape_of(builder(768), 256, batch=2) == (2, 768, 56, 56)


def test_pdn_runs_on_real_tensors():
    out = pdn_small(padding=True)(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 384, 16, 16) and torch.isfinite(out).all()


def test_autoencoder_grid_follows_the_pdn_for_several_image_sizes():
    assert decoder_sizes(256) == [3, 8, 15, 32, 63, 127, 56]  # N's constants, P's formulas
    assert decoder_sizes(256, padding=True)[-1] == 64
    for side in (64, 128, 200, 202, 256):
        for padding in (False, True):
            grid = pdn_output_size(side, padding)
            assert shape_of(Autoencoder(384, side, padding=padding), side, batch=2) == (2, 384, grid, grid)
            assert shape_of(pdn_medium(padding=padding), side)[-1] == grid
    out = Autoencoder(384, 64).eval()(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 384, 8, 8) and torch.isfinite(out).all()
    with pytest.raises(ConfigError, match="image_size"):
        Autoencoder(image_size=32)


def test_state_dict_keys_are_puads():
    assert list(pdn_small().state_dict()) == [f"conv{i}.{k}" for i in range(1, 5) for k in ("weight", "bias")]
    assert list(pdn_medium().state_dict()) == [f"conv{i}.{k}" for i in range(1, 7) for k in ("weight", "bias")]
    keys = list(Autoencoder().state_dict())
    assert keys[:2] == ["encoder.enconv1.weight", "encoder.enconv1.bias"]
    assert keys[-2:] == ["decoder.deconv8.weight", "decoder.deconv8.bias"]
    assert len(keys) == 2 * (6 + 8)


def _n_style_pdn_small() -> nn.Sequential:
    """The layer order of N's ``get_pdn_small`` (written from A2), for its state-dict keys."""
    return nn.Sequential(nn.Conv2d(3, 128, 4), nn.ReLU(), nn.AvgPool2d(2, 2), nn.Conv2d(128, 256, 4), nn.ReLU(),
                         nn.AvgPool2d(2, 2), nn.Conv2d(256, 256, 3), nn.ReLU(), nn.Conv2d(256, 384, 4))


def test_sequential_state_dict_maps_onto_named_layers_and_computes_the_same():
    sequential = _n_style_pdn_small()
    state = sequential.state_dict()
    assert is_sequential_state(state) and sorted({k.split(".")[0] for k in state}, key=int) == ["0", "3", "6", "8"]
    pdn = pdn_small()
    pdn.load_state_dict(sequential_to_named(state, pdn))
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(pdn(x), sequential(x))
    with pytest.raises(ValueError, match="convolutions expected"):
        sequential_to_named(state, pdn_medium())
    assert conv_names(Autoencoder())[0] == "encoder.enconv1"


def test_size_names():
    assert build_pdn("small").size == "s" and build_pdn("medium").size == "m"
    with pytest.raises(ConfigError, match="size"):
        build_pdn("l")
