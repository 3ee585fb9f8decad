//! Training the GAN: [`trainer`] holds the models and optimisers, does one training step
//! ([`Trainer::step`]: hinge and class losses, Adam, the EMA of the generator) and saves and
//! restores them; [`epochs`] is the loop around it (epochs of shuffled batches, step and time
//! limits, progress, the files written after every epoch).

pub mod epochs;
pub mod trainer;

pub use epochs::{PAUSE_ENV, STOP_ENV, train};
pub use trainer::{
    BadSetting, DEFAULT_AUX_WEIGHT, TrainConfig, TrainState, Trainer, ensure_setting,
};
