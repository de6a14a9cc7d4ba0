"""The shipped FSDP config for 2 x 40 GB: accelerate reads it, and it wraps a layer class that exists."""

from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "accelerate" / "fsdp_2x40gb.yaml"


def test_accelerate_reads_the_fsdp_config():
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(CONFIG))
    assert (
        str(cfg.distributed_type).endswith("FSDP")
        and cfg.num_processes == 2
        and cfg.mixed_precision == "bf16"
    )
    fsdp = cfg.fsdp_config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_activation_checkpointing"] is True
    import transformers.models.llama.modeling_llama as llama

    assert hasattr(llama, fsdp["fsdp_transformer_layer_cls_to_wrap"])


def test_the_readme_gives_the_command():
    readme = (ROOT / "README.md").read_text()
    assert "accelerate launch --config_file configs/accelerate/fsdp_2x40gb.yaml" in readme
