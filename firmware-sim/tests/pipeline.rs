//! The whole pipeline on real generator output: what reaches the panel is exactly what
//! `generator-core` produced (expected values computed here, never hard-coded).

use embedded_graphics::{
    geometry::Point,
    mock_display::MockDisplay,
    pixelcolor::{BinaryColor, Gray8},
};
use firmware_sim::{digits, dither::Dither, layout::Layout, render};
use generator_core::{IMAGE_SIDE, Image};

fn generated(digit: u8, seed: u32) -> Image {
    let model = generator_core::default_model().expect("shipped model loads");
    let images = digits::generate_grid(&model, &[digit], 1, seed).expect("generates");
    images[0]
}

fn at(i: usize) -> Point {
    Point::new((i % IMAGE_SIDE) as i32, (i / IMAGE_SIDE) as i32)
}

#[test]
fn grey_panel_shows_the_generated_bytes() {
    let image = generated(4, 42);
    let mut display = MockDisplay::<Gray8>::new();
    let layout = Layout {
        origin: Point::zero(),
        ..Layout::fitted(1, 1, IMAGE_SIDE as u32, 0)
    };
    render::draw_gray(&mut display, &layout, IMAGE_SIDE as u32, [&image[..]]).unwrap();
    for (i, &level) in image.iter().enumerate() {
        assert_eq!(
            display.get_pixel(at(i)),
            Some(Gray8::new(level)),
            "pixel {i}"
        );
    }
}

#[test]
fn oled_threshold_lights_exactly_the_strong_ink() {
    let image = generated(7, 3);
    let mut display = MockDisplay::<BinaryColor>::new();
    let layout = Layout {
        origin: Point::zero(),
        ..Layout::fitted(1, 1, IMAGE_SIDE as u32, 0)
    };
    render::draw_binary(
        &mut display,
        &layout,
        IMAGE_SIDE as u32,
        [&image[..]],
        Dither::Threshold,
    )
    .unwrap();
    for (i, &level) in image.iter().enumerate() {
        let expected = BinaryColor::from(level >= 128);
        assert_eq!(display.get_pixel(at(i)), Some(expected), "pixel {i}");
    }
}

#[test]
fn generation_is_deterministic_and_seeded() {
    // generate_grid is the firmware's path: the same bytes as generator-core's own
    // Generator on an arena that held something else, and the seed matters.
    let model = generator_core::default_model().expect("shipped model loads");
    let mut arena = [0xA5u8; generator_core::MAX_ARENA_BYTES];
    let mut direct = [0u8; generator_core::IMAGE_PIXELS];
    generator_core::Generator::new(&model, &mut arena)
        .expect("arena fits")
        .generate(1, 9, &mut direct)
        .expect("generates");
    assert_eq!(generated(1, 9), direct);
    assert_ne!(generated(1, 9), generated(1, 10));
    let grid = digits::generate_grid(&model, &[2, 5], 2, 100).expect("generates");
    // Row-major: [2 (seed 100), 5 (101), 2 (102), 5 (103)].
    assert_eq!(grid.len(), 4);
    assert_eq!(grid[2], generated(2, 102));
    assert_eq!(grid[3], generated(5, 103));
}
