import torch

from hf_mmmer.training.augmentation import AugmentationConfig, augment_batch, flip_horizontal

NO_AUGMENTATION = AugmentationConfig(flip_prob=0.0, max_shift=0.0, max_rotation_deg=0.0, max_scale=0.0,
                                     noise_std=0.0)


def test_flip_mirrors_space_negates_u_and_keeps_v_and_strain():
    flow = torch.randn(2, 3, 4, 4)
    texture = torch.randn(2, 1, 8, 8)
    mask = torch.tensor([True, False])
    flipped, flipped_texture = flip_horizontal(flow, texture, mask, u_mirror=0.0)
    torch.testing.assert_close(flipped[0, 0], -flow[0, 0].flip(-1))  # u changes sign
    torch.testing.assert_close(flipped[0, 1], flow[0, 1].flip(-1))  # v does not
    torch.testing.assert_close(flipped[0, 2], flow[0, 2].flip(-1))  # strain magnitude does not
    torch.testing.assert_close(flipped_texture[0], texture[0].flip(-1))
    torch.testing.assert_close(flipped[1], flow[1])  # unselected samples untouched
    # With a normalised zero level m, u is mirrored around m: u' = 2m - u; twice is the identity.
    once, _ = flip_horizontal(flow, None, mask, u_mirror=0.3)
    torch.testing.assert_close(once[0, 0], 0.6 - flow[0, 0].flip(-1))
    twice, _ = flip_horizontal(once, None, mask, u_mirror=0.3)
    torch.testing.assert_close(twice, flow)


def test_flip_of_a_rightward_motion_points_left():
    flow = torch.zeros(1, 3, 6, 6)
    flow[0, 0, :, :2] = 1.0  # rightward motion on the left side of the face
    flipped, _ = flip_horizontal(flow, None, torch.tensor([True]))
    assert (flipped[0, 0, :, -2:] == -1.0).all() and (flipped[0, 0, :, :-2] == 0).all()


def test_no_augmentation_is_identity_and_mixup_mixes_labels_consistently():
    generator = torch.Generator().manual_seed(0)
    flow, texture = torch.randn(4, 3, 8, 8), torch.randn(4, 1, 16, 16)
    labels = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    zero = torch.zeros(3)
    same = augment_batch(flow, texture, labels, NO_AUGMENTATION, generator, zero)
    for got, expected in zip(same, (flow, texture, labels)):
        torch.testing.assert_close(got, expected)
    torch.manual_seed(0)
    mixing = AugmentationConfig(flip_prob=0.0, max_shift=0.0, max_rotation_deg=0.0, max_scale=0.0, noise_std=0.0,
                                mixup_alpha=0.4)
    distinct = torch.eye(4)  # one class per sample: the soft labels are then exactly the mixing matrix
    mixed_flow, mixed_texture, soft = augment_batch(flow, texture, distinct, mixing, generator, zero)
    torch.testing.assert_close(soft.sum(-1), torch.ones(4))
    assert not torch.equal(soft, distinct)
    torch.testing.assert_close(mixed_flow, torch.einsum("ij,jchw->ichw", soft, flow))
    torch.testing.assert_close(mixed_texture, torch.einsum("ij,jchw->ichw", soft, texture))


def test_affine_jitter_fills_borders_with_zero_motion_and_keeps_shape():
    generator = torch.Generator().manual_seed(0)
    zero = torch.tensor([0.1, 0.2, -1.0])
    flow = zero.view(1, 3, 1, 1).expand(5, 3, 28, 28).clone()
    jitter = AugmentationConfig(flip_prob=0.0, max_shift=0.1, max_rotation_deg=10.0, max_scale=0.1, noise_std=0.0)
    out, texture, _ = augment_batch(flow, None, torch.eye(3)[[0, 1, 2, 0, 1]], jitter, generator, zero)
    assert texture is None and out.shape == flow.shape
    torch.testing.assert_close(out, flow)  # a motionless map stays motionless, borders included


def test_affine_jitter_moves_the_content_of_each_sample_differently():
    generator = torch.Generator().manual_seed(0)
    zero = torch.zeros(3)
    flow = torch.zeros(4, 3, 28, 28)
    flow[:, :, 10:18, 10:18] = 1.0  # the same square in every sample
    jitter = AugmentationConfig(flip_prob=0.0, max_shift=0.1, max_rotation_deg=10.0, max_scale=0.1, noise_std=0.0)
    out, _, _ = augment_batch(flow, None, torch.eye(3)[[0, 1, 2, 0]], jitter, generator, zero)
    columns = [float((out[i, 0] * torch.arange(28.0)).sum() / out[i, 0].sum()) for i in range(4)]  # centre of mass
    assert not torch.allclose(out, flow, atol=1e-2)
    assert len({round(c, 3) for c in columns}) == 4  # one draw per sample, not one per batch


def test_flow_and_texture_get_the_same_flip_and_warp():
    """Both modalities show the same face, so a sample's texture moves exactly as its flow maps do.

    The texture here is the flow's `v` channel (which a flip mirrors but does not negate), so after any
    augmentation it must still equal the augmented `v`.
    """
    generator = torch.Generator().manual_seed(3)
    flow = torch.rand(8, 3, 28, 28)
    texture = flow[:, 1:2].clone()
    jitter = AugmentationConfig(flip_prob=0.5, max_shift=0.1, max_rotation_deg=10.0, max_scale=0.1, noise_std=0.0)
    out, out_texture, _ = augment_batch(flow, texture, torch.eye(3)[torch.arange(8) % 3], jitter, generator,
                                        torch.zeros(3))
    torch.testing.assert_close(out_texture, out[:, 1:2])
    assert not torch.allclose(out_texture, texture, atol=1e-2)


def test_noise_perturbs_the_flow_only_by_its_std_and_is_drawn_from_the_generator():
    flow, texture = torch.zeros(64, 3, 28, 28), torch.zeros(64, 1, 8, 8)
    labels = torch.eye(3)[torch.arange(64) % 3]
    noisy = AugmentationConfig(flip_prob=0.0, max_shift=0.0, max_rotation_deg=0.0, max_scale=0.0, noise_std=0.2)
    out, out_texture, out_labels = augment_batch(flow, texture, labels, noisy, torch.Generator().manual_seed(0),
                                                 torch.zeros(3))
    assert abs(float(out.std()) - 0.2) < 0.005 and abs(float(out.mean())) < 0.005
    torch.testing.assert_close(out_texture, texture)  # the apex face is a photograph, not an estimate
    torch.testing.assert_close(out_labels, labels)
    again, _, _ = augment_batch(flow, texture, labels, noisy, torch.Generator().manual_seed(0), torch.zeros(3))
    torch.testing.assert_close(again, out)
