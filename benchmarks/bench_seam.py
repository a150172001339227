"""What the denoiser seam costs, and our sampling against diffusers' pipeline on the same weights.

    python benchmarks/bench_seam.py [--steps 50] [--num 16] [--repeats 5]

On the bundled model (the CPU, one process, the best of ``--repeats`` runs of each, so that machine
noise favours neither side): a DDIM run of ``--steps`` steps through core.sampling.SamplingRun,
against (a) ``--steps`` bare network calls on the same batch (the seam's and the loop's overhead:
1.00 would be free) and (b) diffusers' DDIMPipeline on our model exported with export_diffusers
(ours faster when above 1).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def best_of(action, repeats: int) -> float:
    """The fastest of ``repeats`` timed runs of ``action`` (after one warm-up)."""
    action()
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        walls.append(time.perf_counter() - start)
    return min(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from diffusion_studio.core.diffusers_export import export_diffusers
    from diffusion_studio.core.loaded_model import open_model
    from diffusion_studio.core.sample_config import SampleConfig
    from diffusion_studio.core.sampling import SamplingRun

    model = open_model("default")
    config = SampleConfig(sampler="ddim", steps=args.steps, num=args.num, seed=0, clip=False)
    x = torch.randn(args.num, *model.sample_shape)
    index = torch.full((args.num,), 500, dtype=torch.long)

    def bare() -> None:
        with torch.inference_mode():
            for _ in range(args.steps):
                model.network(x, index)

    def ours() -> None:
        for _ in SamplingRun(model, config).steps():
            pass

    network_s, ours_s = best_of(bare, args.repeats), best_of(ours, args.repeats)
    print(f"DDIM {args.steps} steps, {args.num} samples, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  {args.steps} bare network calls {network_s:.3f} s; our sampling run {ours_s:.3f} s: "
          f"overhead ratio {ours_s / network_s:.3f}")
    try:
        import diffusers
    except ImportError:
        print("  diffusers is not installed: no pipeline comparison")
        return
    with tempfile.TemporaryDirectory() as folder:
        exported = export_diffusers("default", Path(folder) / "exported")
        unet = diffusers.UNet2DModel.from_pretrained(exported / "unet").eval()
        scheduler = diffusers.DDIMScheduler.from_pretrained(exported / "scheduler")
        pipeline = diffusers.DDIMPipeline(unet=unet, scheduler=scheduler)
        pipeline.set_progress_bar_config(disable=True)

        def theirs() -> None:
            pipeline(batch_size=args.num, num_inference_steps=args.steps, eta=0.0, output_type="np",
                     generator=torch.Generator().manual_seed(0))

        theirs_s = best_of(theirs, args.repeats)
    print(f"  diffusers {diffusers.__version__} DDIMPipeline on the same weights {theirs_s:.3f} s: "
          f"ours is {theirs_s / ours_s:.2f}× as fast")


if __name__ == "__main__":
    main()
