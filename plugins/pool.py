"""The history pool of generated images (Shrivastava et al.), one per direction.

The discriminators see a mix of the newest fakes and older ones: until the pool holds
``size`` images every fake goes in and straight out; after that each new fake, with
probability 0.5, is swapped with a random stored one (the stored one is returned).
Works per image, so any batch size keeps the same semantics. Its randomness has its own
generator, saved with the pool, so a resumed run draws the same numbers.
"""
import torch


class ImagePool:
    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.images: torch.Tensor | None = None  # (size, C, H, W) once the first fake arrives
        self.count = 0
        self.rng = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def query(self, fakes):
        if self.size == 0:
            return fakes.detach()
        fakes = fakes.detach().float()
        if self.images is None:
            self.images = fakes.new_empty((self.size, *fakes.shape[1:]))
        out = []
        draws = torch.rand(len(fakes), generator=self.rng).tolist()
        slots = torch.randint(self.size, (len(fakes),), generator=self.rng).tolist()
        for img, draw, slot in zip(fakes, draws, slots):
            if self.count < self.size:
                self.images[self.count] = img
                self.count += 1
                out.append(img)
            elif draw < 0.5:
                out.append(self.images[slot].clone())
                self.images[slot] = img
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self):
        images = self.images[: self.count].to("cpu", copy=True) if self.images is not None else torch.empty(0)
        return {"size": self.size, "images": images, "rng": self.rng.get_state()}

    def load_state_dict(self, state, device=None) -> None:
        self.size = state["size"]
        self.rng.set_state(state["rng"])
        images = state["images"]
        self.count = len(images)
        self.images = None
        if self.count:
            self.images = images.new_empty((self.size, *images.shape[1:]))
            self.images[: self.count] = images
            if device is not None:
                self.images = self.images.to(device)
