"""The W-CLIP Trainer's module file: ``run_fn`` trains W-CLIP on the posts' pictures and exports the picture model.

``fn_args.custom_config`` (all optional):

* ``strategy`` (``default`` | ``mirrored`` | ``multi_worker`` | ``tpu``) and ``tpu`` (its name or address);
* ``picture_root``: the folder relative picture paths are under (the pipeline passes its data root);
* ``top_k``: answers per query of the exported signatures;
* ``negatives`` (``in_batch`` | ``queue``: the image–text method of :func:`tfcl.registry.wclip_recipe`),
  ``epochs``, ``batch_size``, ``steps_per_epoch``, ``learning_rate`` and any other keyword of
  :func:`tfcl.recipes.wclip.train_wclip` (model size, vocabulary, ...).

The posts come from the ExampleGen's TFRecords (their ``pictures`` feature holds the references as the source gave
them). ``fn_args.model_run_dir`` gets what :func:`~tfcl.recipes.wclip.train_wclip` writes: the set-aside picture
references (``picture_dead_letters.jsonl``), their counts (``pictures.json``), TensorBoard logs, the held-out
metrics; ``fn_args.serving_model_dir`` the SavedModel of :func:`tfcl.apps.pictures.export_wclip` (signatures
``pictures_for_post``, ``posts_for_picture``, ``embed_post``, ``embed_picture``; the train posts and their pictures
as its indexes).
"""

from __future__ import annotations

from typing import Any

from tfcl.apps.pictures import export_wclip
from tfcl.recipes.wclip import train_wclip
from tfcl.registry import wclip_recipe
from tfcl.strategy import make_strategy, task_out_dir
from tfx_pipeline.components import read_posts
from tfx_pipeline.trainer_module import export_on_chief, training_config

DEFAULTS = {"strategy": "default", "tpu": None, "picture_root": None, "top_k": 10, "negatives": "in_batch"}


def run_fn(fn_args: Any) -> None:
    """Train W-CLIP under the configured strategy and export the serving SavedModel."""
    config = training_config(fn_args.custom_config, DEFAULTS)
    strategy = make_strategy(config.pop("strategy"), config.pop("tpu"))
    picture_root, top_k = config.pop("picture_root"), config.pop("top_k")
    recipe = wclip_recipe(config.pop("negatives"))
    train_posts = read_posts(fn_args.train_files)
    with task_out_dir(fn_args.model_run_dir, strategy) as run_dir:
        model, _ = train_wclip(
            recipe,
            train_posts,
            read_posts(fn_args.eval_files),
            run_dir,
            picture_root=picture_root,
            strategy=strategy,
            verbose=2,
            **config,
        )
    export_on_chief(
        strategy, fn_args.serving_model_dir, lambda path: export_wclip(model, train_posts, path, picture_root, top_k)
    )
