"""Built-in importers of the papers' released files (``t2i-stages import FAMILY FILES``).

One module per family maps its release's keys onto the built-in components (a ``KeyMap``),
tells its files by their keys and shapes (``identify``), reads the release's config from the
tensor shapes and writes the recipe that rebuilds it, with the reference's quirks switched on
where reproducing the release needs them. Each family's format (key maps, fingerprints, the
config from shapes) is a torch-free ``<family>_format`` module (DM-GAN's G_NET and D_NET are
``grgan_format``'s: GR-GAN forked them unchanged, and ``g_net_family`` tells the two releases
apart); ``damsm_side`` takes the DAMSM text side AttnGAN and DM-GAN release beside their netG,
``text_side`` the text encoder a release lacks from a t2i-stages run; ``itm`` GR-GAN's ITM (its
CLIP towers converted by ``itm_format``, its tokenizer rebuilt by ``clip_bpe``). The key maps are written out in
docs/importing-attngan-damsm.md (AttnGAN, DAMSM), docs/importing-dfgan-grgan.md (DF-GAN,
GR-GAN) and docs/importing-dmgan.md (DM-GAN).
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, NoParams, hookimpl


@hookimpl
def t2i_stages_importers() -> dict[str, ComponentSpec]:
    return {
        "attngan": ComponentSpec(
            "t2i_stages.plugins.importers.attngan:build_attngan_importer",
            NoParams,
            "AttnGAN's netG with its DAMSM text encoder and captions.pickle (+ image encoder, Ds)",
        ),
        "damsm": ComponentSpec(
            "t2i_stages.plugins.importers.damsm:build_damsm_importer",
            NoParams,
            "AttnGAN's DAMSM text and image encoders with captions.pickle, as a damsm matcher",
        ),
        "dmgan": ComponentSpec(
            "t2i_stages.plugins.importers.dmgan:build_dmgan_importer",
            NoParams,
            "DM-GAN (MinfengZhu/DM-GAN): netG (+ netD0/1/2) with its DAMSM text encoder and "
            "captions.pickle (+ image encoder)",
        ),
        "dfgan": ComponentSpec(
            "t2i_stages.plugins.importers.dfgan:build_dfgan_importer",
            NoParams,
            "DF-GAN (tobran/DF-GAN): state_epoch_*.pth or NetG, with its DAMSM text encoder and "
            "captions.pickle (or a damsm run)",
        ),
        "grgan": ComponentSpec(
            "t2i_stages.plugins.importers.grgan:build_grgan_importer",
            NoParams,
            "GR-GAN (BoO-18/GR-GAN): checkpoint_*.pth or netG/netD%d.pth, with its ITM_model*.pth "
            "and CLIP's BPE file (or an itm text side from a run)",
        ),
        "itm": ComponentSpec(
            "t2i_stages.plugins.importers.itm:build_itm_importer",
            NoParams,
            "GR-GAN's ITM_model*.pth (CLIP RN101 towers + MLP head) with CLIP's "
            "bpe_simple_vocab_16e6.txt.gz, as an itm matcher",
        ),
    }
