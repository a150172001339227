import pytest
import torch

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.models import build_model, count_parameters
from diffusion_studio.core.models.config import MLPConfig, UNetConfig, config_from_dict, config_to_dict
from diffusion_studio.core.models.unet import UNet, timestep_embedding

TINY = UNetConfig(image_size=8, in_channels=1, out_channels=1, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                  attention_resolutions=(4,), dropout=0.0)


def test_ho_et_al_cifar10_network_has_35_7m_parameters():
    """Ho et al. Appendix B: the CIFAR-10 model has 35.7 million parameters."""
    config = UNetConfig(32, 3, 3, 128, (1, 2, 2, 2), 2, (16,), dropout=0.1)
    assert count_parameters(build_model(config)) == pytest.approx(35.7e6, rel=0.002)


@pytest.mark.parametrize("config", [TINY, UNetConfig(16, 3, 3, 16, (1, 2, 2), 2, (8, 4), num_heads=2)])
def test_unet_output_matches_input_and_depends_on_t(config):
    torch.manual_seed(0)
    model = build_model(config).eval()
    for p in model.parameters():  # leave the zero initialisation so the output is not trivially 0
        p.data.add_(0.02 * torch.randn_like(p))
    x = torch.randn(3, config.in_channels, config.image_size, config.image_size)
    out = model(x, torch.tensor([0, 0, 0]))
    assert out.shape == x.shape
    assert not torch.allclose(out, model(x, torch.tensor([500, 500, 500])))


def test_unet_starts_at_zero_output_like_ho_et_al():
    x = torch.randn(2, 1, 8, 8)
    assert torch.count_nonzero(build_model(TINY)(x, torch.tensor([1, 2]))) == 0


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"image_size": 30}, "image_size"),
        ({"image_size": 4, "channel_mults": (1, 2, 2, 2)}, "image_size"),
        ({"attention_resolutions": (12,)}, "attention_resolutions"),
        ({"in_channels": 4}, "channels"),
        ({"channel_mults": ()}, "channel_mults"),
        ({"dropout": 1.5}, "dropout"),
        ({"num_heads": 3}, "num_heads"),
    ],
)
def test_impossible_unets_are_refused_with_the_setting(changes, setting):
    config = UNetConfig(**changes)
    with pytest.raises(SettingError) as info:
        UNet(config)
    assert info.value.setting == setting


def test_config_round_trips_through_json_form():
    for config in (TINY, MLPConfig(hidden=64)):
        assert config_from_dict(config_to_dict(config)) == config
    with pytest.raises(SettingError, match="unknown"):
        config_from_dict({"kind": "transformer"})
    with pytest.raises(SettingError, match="depth"):
        config_from_dict({"kind": "mlp", "depth": 3})


def test_sinusoidal_embedding():
    e = timestep_embedding(torch.tensor([0, 1, 999]), 16)
    assert e.shape == (3, 16)
    assert torch.allclose(e[0, :8], torch.zeros(8)) and torch.allclose(e[0, 8:], torch.ones(8))
    assert timestep_embedding(torch.tensor([3]), 7).shape == (1, 7)


def test_mlp_shapes():
    model = build_model(MLPConfig())
    assert model(torch.randn(5, 2), torch.arange(5)).shape == (5, 2)
    with pytest.raises(SettingError):
        build_model(MLPConfig(hidden=0))
