"""Vocabulary tables for the synthetic WebShop catalog: product types, brands and option values.

Each :class:`ProductType` describes one kind of product as the original scrape saw it: the search
query the products were scraped with, their breadcrumb, the head nouns every title carries, a
WebShop-style attribute vocabulary and the customization groups a listing may offer.
"""

from __future__ import annotations

from dataclasses import dataclass

Options = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class ProductType:
    """One product type: shared query, breadcrumb, title nouns, attributes and option pools."""

    category: str
    query: str
    path: str
    head: str  # Title Case head noun(s), present in every title of the type
    phrase: str  # lowercase noun phrase used in instructions
    article: str  # "a", "a pair of", "some", "" ("a" becomes "an" before a vowel)
    descriptors: tuple[str, ...]  # Title Case adjectives for titles
    tails: tuple[str, ...]  # Title Case phrases closing a title
    attributes: tuple[str, ...]
    options: Options
    price: tuple[float, float]


BRANDS: tuple[str, ...] = (
    "Norvik", "Almira", "Brevano", "Caldera", "Dunmore", "Elvaro", "Fernhollow", "Galvetti",
    "Halvorsen", "Istara", "Jorvane", "Kestrel", "Lumora", "Marovia", "Nexolt", "Orvella",
    "Pelliton", "Quenby", "Rosvald", "Sablewood", "Tavira", "Ulmora", "Veltrix", "Wrenfield",
    "Xandro", "Yelvana", "Zephra", "Arbolt", "Bellcroft", "Corvina", "Delmare", "Embrik",
    "Fjordley", "Glimora", "Hartvale", "Ivorra", "Jantzel", "Korrigan", "Lindqvale", "Mirabay",
    "Novessa", "Oakhurst", "Pravona", "Quillon", "Ravelle", "Solvika", "Trevanta", "Umbrio",
    "Vantorri", "Willowmere", "Xyloria", "Yarrowby", "Zantero", "Aurelix", "Brightvale",
    "Cindral", "Dravik", "Estrelle", "Fallowby", "Grenlow",
)

COLORS = ("Black", "White", "Navy Blue", "Grey", "Red", "Beige", "Olive Green", "Pink", "Brown")
APPAREL_SIZES = ("X-Small", "Small", "Medium", "Large", "X-Large", "XX-Large", "3X-Large")
SHOE_SIZES = ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12", "13")
PACKS = ("Pack of 1", "Pack of 2", "Pack of 3", "Pack of 4", "Pack of 6", "Pack of 12")
WOOD = ("Walnut", "Espresso", "Rustic Brown", "White Oak", "Black", "Grey Wash", "Natural")

TYPES: tuple[ProductType, ...] = (
    # ---------------------------------------------------------------- beauty
    ProductType(
        "beauty", "shampoo for dry hair",
        "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
        "Shampoo", "shampoo for dry hair", "a",
        ("Moisturizing", "Nourishing", "Clarifying", "Volumizing", "Gentle", "Daily"),
        ("for Dry Damaged Hair", "with Argan Oil Extract", "Hydrating Hair Wash"),
        ("sulfate free", "paraben free", "cruelty free", "natural ingredients", "dry hair",
         "damaged hair", "hair growth", "long lasting", "travel size"),
        (("size", ("8.4 Fl Oz", "12 Fl Oz", "16.9 Fl Oz", "33.8 Fl Oz")),
         ("scent", ("Coconut", "Lavender", "Tea Tree", "Argan Oil", "Unscented", "Rosemary Mint")),
         ("item package quantity", PACKS[:4])),
        (6.0, 38.0)),
    ProductType(
        "beauty", "lipstick", "Beauty & Personal Care › Makeup › Lips › Lipstick",
        "Lipstick", "lipstick", "a",
        ("Matte", "Creamy", "Velvet", "Satin", "Hydrating", "Bold"),
        ("Lip Color Makeup", "Smudge Proof Lip Stain", "for Women"),
        ("long lasting", "cruelty free", "paraben free", "highly pigmented", "easy to apply",
         "vitamin e", "dry skin", "travel size", "water resistant"),
        (("color", ("Ruby Red", "Nude", "Berry", "Coral", "Mauve", "Plum", "Rose Pink")),
         ("item package quantity", PACKS[:3])),
        (4.0, 32.0)),
    ProductType(
        "beauty", "face moisturizer for sensitive skin",
        "Beauty & Personal Care › Skin Care › Face › Creams & Moisturizers",
        "Face Moisturizer", "face moisturizer", "a",
        ("Daily", "Lightweight", "Oil Free", "Soothing", "Hydrating", "Anti Aging"),
        ("Cream for Sensitive Skin", "with Hyaluronic Acid", "Facial Lotion"),
        ("sensitive skin", "fragrance free", "hyaluronic acid", "paraben free", "fine lines",
         "dark circles", "cruelty free", "natural ingredients", "dry skin", "long lasting"),
        (("size", ("1.7 Fl Oz", "2.5 Fl Oz", "3.4 Fl Oz", "5 Fl Oz")),
         ("scent", ("Unscented", "Aloe", "Cucumber", "Green Tea")),
         ("style", ("Day Cream", "Night Cream", "Gel Cream"))),
        (9.0, 85.0)),
    ProductType(
        "beauty", "nail polish",
        "Beauty & Personal Care › Foot, Hand & Nail Care › Nail Art & Polish › Nail Polish",
        "Nail Polish", "nail polish", "a",
        ("Glossy", "Quick Dry", "Shimmer", "Gel Like", "Chip Resistant", "Salon"),
        ("Nail Lacquer Set", "Manicure Varnish", "for Fingernails and Toenails"),
        ("long lasting", "quick drying", "non toxic", "cruelty free", "easy to apply",
         "high gloss", "nail art", "formaldehyde free", "travel size"),
        (("color", ("Cherry Red", "Nude", "Baby Pink", "Lilac", "Black", "Gold Glitter", "Teal")),
         ("item package quantity", PACKS[:4])),
        (3.0, 28.0)),
    ProductType(
        "beauty", "makeup brush set",
        "Beauty & Personal Care › Tools & Accessories › Makeup Brushes & Tools › Brush Sets",
        "Makeup Brushes", "makeup brush set", "a",
        ("Professional", "Premium", "Soft", "Synthetic", "Dense", "Portable"),
        ("Kit with Travel Pouch", "for Foundation Powder Blush", "Kabuki Brush Set"),
        ("synthetic hair", "easy to clean", "travel size", "cruelty free", "high quality",
         "wooden handle", "storage case", "eye shadow", "foundation brush"),
        (("color", ("Rose Gold", "Black", "Champagne", "Pink", "Marble White")),
         ("size", ("10 Piece", "12 Piece", "15 Piece", "18 Piece"))),
        (7.0, 60.0)),
    ProductType(
        "beauty", "body wash",
        "Beauty & Personal Care › Personal Care › Bath & Bathing Accessories › Body Washes",
        "Body Wash", "body wash", "a",
        ("Moisturizing", "Refreshing", "Exfoliating", "Creamy", "Foaming", "Gentle"),
        ("Shower Gel for Men and Women", "with Shea Butter", "Bath Soap Cleanser"),
        ("dry skin", "sensitive skin", "paraben free", "sulfate free", "natural ingredients",
         "shea butter", "long lasting", "cruelty free", "tea tree"),
        (("scent", ("Eucalyptus", "Vanilla", "Coconut", "Lavender", "Citrus", "Sandalwood")),
         ("size", ("10 Fl Oz", "16 Fl Oz", "22 Fl Oz", "32 Fl Oz")),
         ("item package quantity", PACKS[:4])),
        (5.0, 30.0)),
    # ---------------------------------------------------------------- electronics
    ProductType(
        "electronics", "wireless earbuds",
        "Electronics › Headphones, Earbuds & Accessories › Headphones & Earbuds › Earbud Headphones",
        "Wireless Earbuds", "wireless earbuds", "a pair of",
        ("True", "Stereo", "Sport", "Waterproof", "Compact", "Noise Cancelling"),
        ("with Charging Case", "In Ear Headphones with Mic", "Bluetooth 5.3 Earphones"),
        ("wireless bluetooth", "noise cancelling", "fast charging", "long battery life",
         "water resistant", "hands free", "touch control", "built in microphone", "usb c"),
        (("color", ("Black", "White", "Navy Blue", "Rose Gold", "Grey")),
         ("style", ("Standard", "Pro", "Sport Hook"))),
        (15.0, 250.0)),
    ProductType(
        "electronics", "portable bluetooth speaker",
        "Electronics › Portable Audio & Video › Portable Speakers & Docks › Portable Bluetooth Speakers",
        "Bluetooth Speaker", "bluetooth speaker", "a",
        ("Portable", "Waterproof", "Outdoor", "Rugged", "Loud", "Mini"),
        ("with Deep Bass and Stereo Sound", "for Home Party Beach", "Wireless Boombox"),
        ("wireless bluetooth", "long battery life", "water resistant", "high fidelity",
         "stereo sound", "easy carry", "built in microphone", "usb c", "fast charging"),
        (("color", ("Black", "Blue", "Red", "Camo Green", "Grey", "Teal")),
         ("style", ("Mini", "Standard", "Max"))),
        (18.0, 300.0)),
    ProductType(
        "electronics", "usb c charging cable",
        "Electronics › Computers & Accessories › Computer Accessories & Peripherals › Cables › USB Cables",
        "Charging Cable", "usb c charging cable", "a",
        ("Braided", "Durable", "Nylon", "Tangle Free", "Heavy Duty", "Right Angle"),
        ("USB C to USB C Cord", "Type C Charger Wire", "for Phones Tablets Laptops"),
        ("fast charging", "usb c", "high speed", "data transfer", "heavy duty", "nylon braided",
         "plug and play", "aluminum alloy", "tangle free"),
        (("color", ("Black", "White", "Grey", "Red", "Blue")),
         ("size", ("3 Feet", "6 Feet", "10 Feet")),
         ("item package quantity", PACKS[:5])),
        (5.0, 30.0)),
    ProductType(
        "electronics", "phone case",
        "Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases",
        "Phone Case", "phone case", "a",
        ("Slim", "Clear", "Shockproof", "Rugged", "Protective", "Magnetic"),
        ("Cover with Screen Protector", "Bumper Shell", "with Kickstand"),
        ("shock absorbing", "wireless charging", "easy install", "drop protection", "scratch resistant",
         "slim fit", "glass screen", "non slip", "raised edges"),
        (("color", ("Clear", "Black", "Navy Blue", "Purple", "Green", "Marble")),
         ("style", ("iPhone 14", "iPhone 15", "Galaxy S23", "Galaxy S24", "Pixel 8"))),
        (6.0, 45.0)),
    ProductType(
        "electronics", "portable power bank",
        "Electronics › Cell Phones & Accessories › Chargers & Power Adapters › Portable Power Banks",
        "Power Bank", "power bank", "a",
        ("Portable", "Compact", "Slim", "High Capacity", "Dual Port", "Solar"),
        ("Battery Pack with LED Display", "External Phone Charger", "for Travel and Camping"),
        ("fast charging", "usb c", "high capacity", "led display", "easy carry", "wireless charging",
         "dual usb", "overcharge protection", "lightweight design"),
        (("color", ("Black", "White", "Blue", "Pink")),
         ("capacity", ("5000mAh", "10000mAh", "20000mAh", "26800mAh"))),
        (14.0, 90.0)),
    ProductType(
        "electronics", "tv wall mount",
        "Electronics › Television & Video › Accessories › TV Mounts, Stands & Turntables › TV Wall & Ceiling Mounts",
        "TV Wall Mount", "tv wall mount", "a",
        ("Full Motion", "Heavy Duty", "Tilting", "Swivel", "Low Profile", "Articulating"),
        ("Bracket for Flat Screens", "with Articulating Arms", "Fits 16 Inch Studs"),
        ("heavy duty", "easy install", "full motion", "cable management", "steel frame",
         "tilt swivel", "space saving", "flat screen", "max vesa"),
        (("size", ("26-55 Inch", "37-70 Inch", "42-85 Inch")),
         ("style", ("Fixed", "Tilting", "Full Motion"))),
        (19.0, 160.0)),
    # ---------------------------------------------------------------- fashion
    ProductType(
        "fashion", "running shoes for men",
        "Clothing, Shoes & Jewelry › Men › Shoes › Athletic › Running",
        "Running Shoes", "running shoes for men", "a pair of",
        ("Breathable", "Lightweight", "Cushioned", "Athletic", "Road", "Mesh"),
        ("Men's Athletic Sneakers", "Walking Jogging Trainers", "for Gym Workout"),
        ("non slip", "rubber sole", "lace up", "memory foam", "breathable mesh",
         "arch support", "lightweight design", "shock absorbing", "daily wear"),
        (("color", COLORS[:6]), ("size", SHOE_SIZES)),
        (29.0, 160.0)),
    ProductType(
        "fashion", "summer dress for women",
        "Clothing, Shoes & Jewelry › Women › Clothing › Dresses › Casual",
        "Summer Dress", "summer dress for women", "a",
        ("Floral", "Flowy", "Casual", "Boho", "Sleeveless", "Elegant"),
        ("Women's Midi Sundress", "with Pockets", "Beach Party Dress for Women"),
        ("machine wash", "hand wash", "polyester spandex", "short sleeve", "v neck",
         "elastic waist", "button closure", "daily wear", "soft material"),
        (("color", ("Black", "Navy Blue", "Floral Blue", "Red", "Yellow", "Green", "White")),
         ("size", APPAREL_SIZES[:6])),
        (16.0, 70.0)),
    ProductType(
        "fashion", "men's t shirt",
        "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
        "T-Shirt", "t-shirt for men", "a",
        ("Crew Neck", "Classic", "Cotton", "Slim Fit", "Basic", "Soft"),
        ("Men's Short Sleeve Tee", "Casual Top for Men", "Undershirt"),
        ("machine wash", "cotton spandex", "short sleeve", "crew neck", "regular fit",
         "moisture wicking", "tumble dry", "daily wear", "soft material"),
        (("color", COLORS), ("size", APPAREL_SIZES), ("item package quantity", PACKS[:4])),
        (9.0, 45.0)),
    ProductType(
        "fashion", "yoga leggings for women",
        "Clothing, Shoes & Jewelry › Women › Clothing › Active › Leggings",
        "Yoga Leggings", "yoga leggings for women", "a pair of",
        ("High Waisted", "Stretchy", "Seamless", "Buttery Soft", "Opaque", "Workout"),
        ("Women's Tummy Control Pants", "with Pockets", "Athletic Tights"),
        ("high waist", "tummy control", "butt lifting", "moisture wicking", "machine wash",
         "four way stretch", "squat proof", "elastic waistband", "quick drying"),
        (("color", ("Black", "Navy Blue", "Heather Grey", "Wine Red", "Olive Green", "Dusty Pink")),
         ("size", APPAREL_SIZES[:6])),
        (14.0, 60.0)),
    ProductType(
        "fashion", "pullover hoodie",
        "Clothing, Shoes & Jewelry › Men › Clothing › Fashion Hoodies & Sweatshirts",
        "Pullover Hoodie", "pullover hoodie", "a",
        ("Fleece", "Heavyweight", "Oversized", "Cozy", "Classic", "Warm"),
        ("Hooded Sweatshirt with Kangaroo Pocket", "Sweatshirt Jacket", "for Winter"),
        ("machine wash", "long sleeve", "drawstring closure", "kangaroo pocket", "cotton blend",
         "regular fit", "fleece lined", "soft material", "ribbed cuffs"),
        (("color", COLORS), ("size", APPAREL_SIZES)),
        (19.0, 75.0)),
    ProductType(
        "fashion", "women's sandals", "Clothing, Shoes & Jewelry › Women › Shoes › Sandals › Flat",
        "Sandals", "sandals for women", "a pair of",
        ("Flat", "Strappy", "Comfortable", "Summer", "Leather", "Casual"),
        ("Women's Slide Slippers", "with Arch Support Footbed", "Beach Flip Flops"),
        ("non slip", "arch support", "rubber sole", "open toe", "ankle strap", "memory foam",
         "faux leather", "adjustable strap", "daily wear"),
        (("color", ("Black", "Tan", "White", "Gold", "Silver", "Brown")), ("size", SHOE_SIZES[:11])),
        (15.0, 80.0)),
    # ---------------------------------------------------------------- food
    ProductType(
        "food", "ground coffee",
        "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Coffee › Ground Coffee",
        "Ground Coffee", "ground coffee", "a bag of",
        ("Medium Roast", "Dark Roast", "Smooth", "Bold", "Rich", "Premium"),
        ("Arabica Coffee Beans Blend", "Breakfast Blend Bag", "for Drip and French Press"),
        ("fair trade", "usda organic", "non gmo", "single origin", "kosher certified",
         "low acid", "whole bean", "gluten free", "decaf"),
        (("flavor name", ("Original", "Vanilla", "Hazelnut", "Caramel", "Mocha", "French Roast")),
         ("size", ("10 Ounce", "12 Ounce", "2 Pound", "32 Ounce"))),
        (7.0, 40.0)),
    ProductType(
        "food", "protein bars", "Grocery & Gourmet Food › Snacks & Sweets › Bars › Protein Bars",
        "Protein Bars", "protein bars", "a box of",
        ("High Protein", "Low Carb", "Chewy", "Crunchy", "Keto", "Wholesome"),
        ("Snack Bars Variety Pack", "Meal Replacement Bars", "for Energy on the Go"),
        ("gluten free", "low sugar", "non gmo", "high protein", "keto friendly", "plant based",
         "dairy free", "low carb", "individually wrapped"),
        (("flavor name", ("Chocolate Chip", "Peanut Butter", "Cookie Dough", "Birthday Cake",
                          "Salted Caramel", "Variety Pack")),
         ("size", ("12 Count", "15 Count", "20 Count")),
         ("item package quantity", PACKS[:3])),
        (12.0, 55.0)),
    ProductType(
        "food", "herbal tea bags",
        "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Tea › Herbal",
        "Herbal Tea", "herbal tea", "a box of",
        ("Calming", "Caffeine Free", "Organic", "Soothing", "Relaxing", "Loose Leaf"),
        ("Tea Bags Variety Box", "Infusion Sachets", "for Bedtime"),
        ("caffeine free", "usda organic", "non gmo", "gluten free", "kosher certified",
         "individually wrapped", "sugar free", "natural ingredients", "fair trade"),
        (("flavor name", ("Chamomile", "Peppermint", "Ginger Lemon", "Hibiscus", "Rooibos", "Lavender")),
         ("size", ("20 Count", "40 Count", "100 Count")),
         ("item package quantity", PACKS[:4])),
        (4.0, 30.0)),
    ProductType(
        "food", "mixed nuts",
        "Grocery & Gourmet Food › Snacks & Sweets › Nuts & Seeds › Mixed Nuts",
        "Mixed Nuts", "mixed nuts", "a jar of",
        ("Roasted", "Salted", "Unsalted", "Deluxe", "Crunchy", "Raw"),
        ("with Cashews Almonds Pecans", "Trail Mix Snack", "Resealable Bag"),
        ("gluten free", "non gmo", "low sodium", "high protein", "kosher certified",
         "resealable bag", "plant based", "keto friendly", "natural ingredients"),
        (("flavor name", ("Lightly Salted", "Unsalted", "Honey Roasted", "Sea Salt", "Smoked")),
         ("size", ("8 Ounce", "16 Ounce", "2 Pound", "40 Ounce"))),
        (6.0, 45.0)),
    ProductType(
        "food", "dark chocolate",
        "Grocery & Gourmet Food › Snacks & Sweets › Candy & Chocolate › Chocolate Bars",
        "Dark Chocolate", "dark chocolate", "a pack of",
        ("Rich", "Smooth", "Intense", "Artisan", "Gourmet", "Belgian"),
        ("Candy Gift Box", "Cocoa Squares", "Sweet Treats"),
        ("sugar free", "non gmo", "gluten free", "fair trade", "dairy free", "usda organic",
         "individually wrapped", "kosher certified", "low sugar"),
        (("flavor name", ("70% Cacao", "Sea Salt", "Raspberry", "Orange", "Almond", "Mint")),
         ("item package quantity", PACKS)),
        (4.0, 40.0)),
    ProductType(
        "food", "beef jerky",
        "Grocery & Gourmet Food › Meat & Seafood › Jerky & Dried Meats › Beef Jerky",
        "Beef Jerky", "beef jerky", "a bag of",
        ("Tender", "Smoky", "Original", "Premium", "Spicy", "Teriyaki"),
        ("Meat Snacks", "Dried Steak Strips", "High Protein Snack Pack"),
        ("high protein", "gluten free", "low fat", "grass fed", "no msg", "keto friendly",
         "low sugar", "resealable bag", "ready to eat"),
        (("flavor name", ("Original", "Teriyaki", "Peppered", "Sweet and Hot", "Jalapeno", "Hickory")),
         ("size", ("2.8 Ounce", "3.25 Ounce", "10 Ounce")),
         ("item package quantity", PACKS[:4])),
        (6.0, 50.0)),
    # ---------------------------------------------------------------- furniture
    ProductType(
        "furniture", "ergonomic office chair",
        "Home & Kitchen › Furniture › Home Office Furniture › Home Office Chairs › Desk Chairs",
        "Office Chair", "office chair", "an",
        ("Ergonomic", "Mesh", "High Back", "Swivel", "Adjustable", "Executive"),
        ("Desk Chair with Lumbar Support", "Computer Task Seat", "with Armrests"),
        ("lumbar support", "height adjustable", "easy assemble", "heavy duty", "high density",
         "breathable mesh", "smooth rolling", "padded armrests", "faux leather"),
        (("color", ("Black", "Grey", "White", "Blue", "Pink")),
         ("style", ("With Headrest", "Without Headrest", "Fixed Armrests", "Flip Up Arms"))),
        (60.0, 450.0)),
    ProductType(
        "furniture", "coffee table for living room",
        "Home & Kitchen › Furniture › Living Room Furniture › Tables › Coffee Tables",
        "Coffee Table", "coffee table for living room", "a",
        ("Modern", "Rustic", "Round", "Lift Top", "Industrial", "Mid Century"),
        ("with Storage Shelf", "Cocktail Table for Living Room", "Center Table"),
        ("easy assemble", "solid wood", "storage space", "metal legs", "easy to clean",
         "tempered glass", "engineered wood", "living room", "mid century"),
        (("color", WOOD), ("size", ("Small", "Medium", "Large")),
         ("style", ("Round", "Rectangular", "Lift Top"))),
        (70.0, 600.0)),
    ProductType(
        "furniture", "bookcase", "Home & Kitchen › Furniture › Home Office Furniture › Bookcases",
        "Bookcase", "bookcase", "a",
        ("Tall", "Open", "Ladder", "Modern", "Corner", "Industrial"),
        ("Bookshelf Display Rack", "with 5 Tier Shelves", "Storage Organizer"),
        ("easy assemble", "engineered wood", "solid wood", "storage space", "wall mounted",
         "metal frame", "living room", "anti tip", "space saving"),
        (("color", WOOD), ("size", ("3 Tier", "4 Tier", "5 Tier", "6 Tier"))),
        (40.0, 400.0)),
    ProductType(
        "furniture", "platform bed frame queen",
        "Home & Kitchen › Furniture › Bedroom Furniture › Beds, Frames & Bases › Beds",
        "Platform Bed Frame", "platform bed frame", "a",
        ("Upholstered", "Metal", "Low Profile", "Wooden", "Modern", "Sturdy"),
        ("with Headboard", "Mattress Foundation with Slats", "No Box Spring Needed"),
        ("easy assemble", "box spring", "heavy duty", "under bed storage", "noise free",
         "solid wood", "wood slat", "metal frame", "upholstered headboard"),
        (("color", ("Black", "Grey", "Beige", "Walnut", "White", "Navy Blue")),
         ("size", ("Twin", "Full", "Queen", "King", "California King"))),
        (110.0, 900.0)),
    ProductType(
        "furniture", "bar stools set of 2",
        "Home & Kitchen › Furniture › Kitchen & Dining Room Furniture › Barstools",
        "Bar Stools", "bar stools", "a set of",
        ("Counter Height", "Swivel", "Adjustable", "Upholstered", "Backless", "Industrial"),
        ("for Kitchen Island", "Pub Height Chairs", "with Footrest"),
        ("height adjustable", "easy assemble", "faux leather", "footrest", "metal legs",
         "solid wood", "easy to clean", "high density", "non slip"),
        (("color", ("Black", "Grey", "Brown", "White", "Walnut", "Green")),
         ("item package quantity", ("Set of 2", "Set of 3", "Set of 4"))),
        (60.0, 380.0)),
    ProductType(
        "furniture", "nightstand", "Home & Kitchen › Furniture › Bedroom Furniture › Nightstands",
        "Nightstand", "nightstand", "a",
        ("Modern", "Minimalist", "Farmhouse", "Compact", "Floating", "Rustic"),
        ("with Charging Station", "Bedside Cabinet with Drawer", "Bedroom Side Cabinet"),
        ("easy assemble", "solid wood", "storage space", "charging station", "engineered wood",
         "metal legs", "easy to clean", "space saving", "living room"),
        (("color", WOOD), ("item package quantity", ("Set of 1", "Set of 2"))),
        (30.0, 260.0)),
)
