//! The resource score: one number per node, lower is better (less
//! loaded). This first version weighs load per core, memory use and busy
//! encode slots; the distributed-encoding work adds I/O and network rates.

/// Score in 0..=100 from load per core, memory percent and slot use (pure).
pub fn score(load_per_core: f32, memory_percent: f32, slots_busy: u32, slots_total: u32) -> f32 {
    let load = (load_per_core * 100.0).clamp(0.0, 100.0);
    let memory = memory_percent.clamp(0.0, 100.0);
    let slots = if slots_total == 0 {
        100.0
    } else {
        (slots_busy as f32 / slots_total as f32 * 100.0).min(100.0)
    };
    0.4 * load + 0.2 * memory + 0.4 * slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busier_nodes_score_higher() {
        let idle = score(0.0, 20.0, 0, 2);
        let busy = score(1.0, 20.0, 2, 2);
        assert!(idle < busy);
        assert_eq!(score(2.0, 150.0, 5, 2), 100.0);
        assert_eq!(score(0.0, 0.0, 0, 0), 40.0);
    }
}
