//! PNG line charts (plotters), rendered in memory and written atomically.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::FontStyle;

use pretune::fs::write_atomic;

/// One line of a chart.
pub struct Series {
    pub label: String,
    /// Index into the palette, so one thing keeps one colour across charts.
    pub color: usize,
    pub points: Vec<(f64, f64)>,
}

/// Points of a per-epoch curve: epoch 1, 2, … against `values`.
pub fn per_epoch(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(e, &v)| ((e + 1) as f64, v))
        .collect()
}

/// One plot area.
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Logarithmic x axis (e.g. labels per class).
    pub log_x: bool,
    /// The y values are fractions (accuracies): shown as percentages, kept within 0–1.
    pub y_percent: bool,
}

const PALETTE: [RGBColor; 7] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    // matplotlib's next tab colours: orange, brown, pink (the vision demo's seven methods).
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// Plotters draws text with the bundled DejaVu Sans, so charts look the same on every machine.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../assets/DejaVuSans.ttf"),
        );
    });
}

/// Draw `panels` side by side into a PNG at `path`.
pub fn draw(path: &Path, panels: &[Panel]) -> Result<()> {
    register_font();
    let (w, h) = (560 * panels.len() as u32, 420u32);
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
        for (area, panel) in root.split_evenly((1, panels.len())).iter().zip(panels) {
            draw_panel(area, panel).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
        }
        root.present()
            .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    }
    let img = image::RgbImage::from_raw(w, h, buffer).expect("buffer matches size");
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    write_atomic(path, &png)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn draw_panel(area: &Area, panel: &Panel) -> Result<(), Box<dyn std::error::Error>> {
    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (y0, y1) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    let (x0, x1) = if x0.is_finite() {
        (x0, x1.max(x0 + 1.0))
    } else {
        (0.0, 1.0)
    };
    let pad = ((y1 - y0) * 0.08).max(0.01);
    // Room under the lowest line for the legend (lower right), one line of it per series.
    let below = pad.max((y1 - y0) * 0.15 * panel.series.len() as f64);
    let (y0, y1) = match (y0.is_finite(), panel.y_percent) {
        (false, _) => (0.0, 1.0),
        (true, true) => ((y0 - below).max(0.0), (y1 + pad).min(1.0)),
        (true, false) => (y0 - below, y1 + pad),
    };
    if panel.log_x {
        plot(area, panel, (x0 * 0.8..x1 * 1.25).log_scale(), y0..y1)
    } else {
        plot(area, panel, x0..x1, y0..y1)
    }
}

fn plot<X>(
    area: &Area,
    panel: &Panel,
    x: X,
    y: std::ops::Range<f64>,
) -> Result<(), Box<dyn std::error::Error>>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_label_formatter(&|x| {
            if panel.log_x {
                // Budgets and the like: 1, 2 and 5 times a power of ten, written out.
                let lead = x / 10f64.powf(x.log10().floor());
                match [1.0, 2.0, 5.0].iter().any(|l| (lead - l).abs() < 1e-6) {
                    true => thousands(x.round() as u64),
                    false => String::new(),
                }
            } else if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                // Epochs and the like: whole numbers only.
                String::new()
            }
        })
        .y_label_formatter(&|y| {
            if panel.y_percent {
                format!("{:.0}%", 100.0 * y)
            } else {
                format!("{y:.2}")
            }
        })
        .label_style(("sans-serif", 14))
        .draw()?;
    for s in &panel.series {
        let color = PALETTE[s.color % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)).point_size(3))?
            .label(&s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(7), "7");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
